"""What a finished job shows: the table of scores and speeds, then the report in ``<workdir>/report/``.

Called by ``launch.train`` and :func:`sparse_orl.train` after the job, never from inside it.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from sparse_orl.store.summary import LAST_EVALS, Summary
from sparse_orl.text import fmt_time
from sparse_orl.report.make import make_report

Group = Tuple[str, float]


def _group(pruner: str, sparsity: float) -> Group:
    return ("dense", 0.0) if pruner == "dense" else (pruner, float(sparsity))


def final_table(summary: Summary, wall_s: Optional[float] = None) -> str:
    """One row per (pruner, sparsity): the score (mean of each run's last evaluations) mean ± sample
    std over seeds, and the training speed in run-steps per second of the run's program (all its runs'
    steps per second: one unit for every row, whatever the program's run count)."""
    rows: Dict[Group, List] = {}
    for r in summary.runs:
        rows.setdefault(_group(r.pruner, r.sparsity), []).append(r)
    w = max([16] + [len(g[0]) for g in rows])  # long labels
    head = (f"{'pruner':<{w}} {'sparsity':>8} {'seeds':>5} {'score (last ' + str(LAST_EVALS) + ' evals)':>22} "
            f"{'run-steps/s':>11} {'runs/program':>12}")
    lines = [head, "-" * len(head)]
    for g, rs in rows.items():
        scores = [r.score() for r in rs if r.score() is not None]
        diverged = sum(not r.ok for r in rs)
        if scores:
            score = f"{np.mean(scores):.1f} ± {np.std(scores, ddof=1):.1f}" if len(scores) > 1 else f"{scores[0]:.1f}"
        else:
            score = "n/a"
        if diverged:
            score += f" ({diverged} diverged)"
        sps, n = rs[0].train_steps_per_s, rs[0].program_runs
        speed = f"{sps * n:>11.0f}" if sps and n else f"{'':>11}"
        lines.append(f"{g[0]:<{w}} {g[1]:>8g} {len(rs):>5} {score:>22} {speed} {n or '':>12}")
    lines.append("score: normalized (0 = random, 100 = expert) where the dataset has reference returns; "
                 "± is the sample std over seeds")
    if wall_s is not None:
        lines.append(f"wall time {fmt_time(wall_s)}")
    return "\n".join(lines)


def finish_job(summary: Summary, workdir: str, log: Callable[[str], None], report: bool,
               wall_s: Optional[float] = None) -> None:
    """The final table, and (``report``) the report in ``<workdir>/report/``; a report that fails is a
    warning, never a failure of the finished job."""
    log("\n" + final_table(summary, wall_s))
    if not report:
        return
    if not any(r.evals for r in summary.runs):
        log("no evaluations (--eval_episodes=0): no report")
        return

    try:
        make_report(workdir, os.path.join(workdir, "report"), log=log)
    except Exception as e:  # noqa: BLE001  (a report failure must not fail a finished run)
        log(f"warning: report not written ({type(e).__name__}: {e}); run python -m launch.report --workdir={workdir}")
