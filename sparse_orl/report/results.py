"""A sweep's results table, without jax: summaries -> tidy rows, ``results.csv`` / ``results.jsonl``.

One row per (run, evaluation) with :data:`BASE_COLUMNS` plus ``sparsity_<network>``
(the actual fraction of prunable weights removed) and ``program``. Diverged runs
are not rows; they are returned (and written to ``diverged.json``) separately.
Which programs a sweep holds is the plan's business (:mod:`sparse_orl.sweep`), which records
them in ``sweep.json``; this module only reads and writes files (standard library and
:mod:`sparse_orl.store`), so the report code can use it without the trainer.
"""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Callable, Dict, Iterable, List, Sequence, Tuple

from sparse_orl.store.atomic import atomic_write_json, atomic_write_text
from sparse_orl.store.summary import Summary, read_summary

SWEEP_FILE = "sweep.json"  # what marks a sweep workdir (written by sparse_orl.sweep.check_sweep_workdir)
BASE_COLUMNS = ("algo", "algo_name", "pruner", "sparsity", "dataset", "env", "seed", "step", "returns", "return",
                "normalized_score", "weights_kept")
EXTRA_COLUMNS = ("max_transitions", "data_subset", "width_multiplier")  # after the sparsity_<network> columns
# Rows also carry "train_steps_per_s" and "program_runs" (the report's speed table), timings: they stay
# out of the results table so that a resumed sweep's results are byte-identical to an uninterrupted one.

Log = Callable[[str], None]


def current_label(label: str) -> str:
    """A method's label as it is printed today (older summaries wrote "random+erk" for erk_random)."""
    return "erk_random" + label[len("random+erk"):] if label.split("+")[:2] == ["random", "erk"] else label


def read_summaries(programs: Iterable[Tuple[str, str]]) -> Tuple[List[Tuple[str, str, Summary]], List[str]]:
    """For (name, workdir) pairs: ([(name, workdir, summary)] of complete programs, names of the others).

    A program without ``summary.json``, or with one not marked complete, is unfinished;
    a corrupt one raises ``ValueError`` naming the file.
    """
    done, unfinished = [], []
    for name, workdir in programs:
        summary = read_summary(workdir)
        if summary is None or not summary.complete:
            unfinished.append(name)
        else:
            done.append((name, workdir, summary))
    return done, unfinished


def rows_from_summary(summary: Summary, program: str = "") -> Tuple[List[Dict], List[Dict]]:
    """Tidy rows (one per run and evaluation) of one summary, and the diverged runs."""
    cfg = summary.config
    for run in summary.runs:  # sparsity 0 is the dense run (older workdirs named it "none" or its pruner)
        if run.sparsity == 0.0 or run.pruner == "none":
            run.pruner = "dense"
        run.pruner = current_label(run.pruner)
    rows, diverged = [], []
    for run in summary.runs:
        ident = {"algo": summary.algo_label, "algo_name": summary.algo_name, "pruner": run.pruner,
                 "sparsity": float(run.sparsity), "dataset": cfg.get("dataset"), "env": summary.env_id,
                 "seed": int(run.seed), "max_transitions": cfg.get("max_transitions"),
                 "data_subset": None if cfg.get("max_transitions") is None else cfg.get("data_subset") or "uniform",
                 "width_multiplier": float(cfg.get("width_multiplier") or 1.0)}
        if not run.ok:
            diverged.append(dict(ident, nan_step=run.nan_step, program=program))
            continue
        nets = {f"sparsity_{net}": float(rep["sparsity"]) for net, rep in run.masks.items()}
        for e in run.evals:
            rows.append(dict(ident, step=e.step, returns=list(e.returns), **{"return": e.mean_return},
                             normalized_score=e.normalized_score, weights_kept=run.kept,
                             train_steps_per_s=run.train_steps_per_s, program_runs=run.program_runs,
                             **nets, program=program or run.program or ""))
    return rows, diverged


def columns_of(rows: Sequence[Dict]) -> List[str]:
    """:data:`BASE_COLUMNS`, the ``sparsity_<network>`` columns present (in the rows' order),
    :data:`EXTRA_COLUMNS`, then ``program``."""
    nets = list(dict.fromkeys(k for r in rows for k in r if k.startswith("sparsity_")))
    return list(BASE_COLUMNS) + nets + list(EXTRA_COLUMNS) + ["program"]


def row_sort_key(r: Dict):
    """The order of the results table: algo, dataset, data budget, width, pruner, sparsity, seed, step."""
    budget = r.get("max_transitions")
    return (r["algo"], r["dataset"], budget is None, budget or 0, r.get("data_subset") or "",
            r.get("width_multiplier") or 1.0, r["pruner"],
            r["sparsity"], r["seed"], r["step"])


def tidy_table(rows: Sequence[Dict]) -> Tuple[List[Dict], List[str]]:
    """(rows sorted and with exactly the table's columns, missing ones None; the columns)."""
    rows = sorted(rows, key=row_sort_key)
    columns = columns_of(rows)
    return [{c: r.get(c) for c in columns} for r in rows], columns


def log_diverged(diverged: Sequence[Dict], log: Log) -> None:
    if diverged:
        log(f"excluded {len(diverged)} diverged run(s): " + "; ".join(
            f"{d['algo']} {d['pruner']} sparsity {d['sparsity']} seed {d['seed']} on {d['dataset']} "
            f"(non-finite loss at step {d['nan_step']})" for d in diverged))


def write_results(sweep_workdir: str, rows: Sequence[Dict], columns: Sequence[str], diverged: Sequence[Dict],
                  log: Log = print) -> Tuple[str, str]:
    """Write ``results.csv``, ``results.jsonl`` and ``diverged.json`` atomically; returns (csv, jsonl) paths.

    CSV cells: lists as JSON, floats as ``repr`` (round-trip exact), None as empty.
    """
    csv_path = os.path.join(sweep_workdir, "results.csv")
    jsonl_path = os.path.join(sweep_workdir, "results.jsonl")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r[c] is None else json.dumps(r[c]) if isinstance(r[c], list)
                    else repr(r[c]) if isinstance(r[c], float) else r[c] for c in columns])
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(jsonl_path, "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_json(os.path.join(sweep_workdir, "diverged.json"), list(diverged))
    log(f"results: {len(rows)} rows -> {csv_path}, {jsonl_path}")
    return csv_path, jsonl_path


def load_results(sweep_workdir: str) -> List[Dict]:
    """Rows of ``results.jsonl``, read strictly: a truncated or corrupt file raises
    ``ValueError`` naming it (re-run the sweep command to rewrite it from the summaries)."""
    path = os.path.join(sweep_workdir, "results.jsonl")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no results in {sweep_workdir} (results.jsonl missing; has the sweep finished?)")
    rows = []
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        raise ValueError(f"results file {path} is truncated (no newline at the end); re-run the sweep command "
                         "to rewrite it from the programs' summaries")
    for i, line in enumerate(text.splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"results file {path} is corrupt at line {i} ({e}); re-run the sweep command to "
                             "rewrite it from the programs' summaries") from None
        if not isinstance(row, dict) or not set(BASE_COLUMNS) <= set(row):
            raise ValueError(f"results file {path} is corrupt at line {i} (not a results row)")
        rows.append(row)
    return rows
