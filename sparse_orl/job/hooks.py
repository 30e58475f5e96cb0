"""What the host loop does after a chunk, one small hook per concern (:mod:`sparse_orl.job.loop`).

Each hook is called with the chunk's :class:`~sparse_orl.job.loop.Tick`, in this order:
:class:`Divergence` (flags runs whose loss turned non-finite), :class:`Evaluate` (evaluation
episodes at evaluation steps), :class:`MetricRows` (a metric row per run), :class:`Checkpoint`,
:class:`Progress` (the progress line) and :class:`Stop` (ends the job after a checkpoint when a
signal came). They share one :class:`Record` of what the runs have done so far.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from sparse_orl.data import normalized_score
from sparse_orl.job.interrupts import Interrupted
from sparse_orl.job.loop import Tick
from sparse_orl.job.progress import Group, progress_line, score_text
from sparse_orl.store.summary import Eval

Log = Callable[[str], None]


@dataclasses.dataclass
class Record:
    """What the runs of a program have done so far (host side)."""

    labels: List[str]  # per run
    seeds: List[int]
    sparsities: List[float]
    evals: List[List[Eval]]  # per run
    nan_steps: np.ndarray  # per run: the step where its loss turned non-finite, -1 if never
    train_seconds: float = 0.0  # training time after the first (compiling) chunk
    train_steps: int = 0

    @property
    def num_runs(self) -> int:
        return len(self.labels)

    @property
    def steps_per_s(self) -> Optional[float]:
        """Steps per second of one run (every run of the program advances together)."""
        return self.train_steps / self.train_seconds if self.train_seconds > 0 else None


class Divergence:
    """Keeps ``record.nan_steps`` and says once which runs diverged (they are frozen, not dropped)."""

    def __init__(self, record: Record, log: Log):
        self.record, self.log = record, log
        self.reported = {i for i in range(record.num_runs) if record.nan_steps[i] >= 0}

    def __call__(self, tick: Tick) -> None:
        r = self.record
        r.nan_steps = np.asarray(tick.metrics["nan_step"])[:r.num_runs]
        newly = [i for i in range(r.num_runs) if r.nan_steps[i] >= 0 and i not in self.reported]
        if newly:
            self.reported.update(newly)
            self.log("DIVERGED (loss not finite; run frozen, excluded from results): " + ", ".join(
                f"{r.labels[i]} seed {r.seeds[i]} sparsity {r.sparsities[i]} at step {int(r.nan_steps[i])}"
                for i in newly))


class Evaluate:
    """At evaluation steps: every run's episodes, its normalized score, the score text, the summary."""

    def __init__(self, record: Record, evaluate_fn: Callable, groups: Sequence[Group], score_ref: Dict,
                 on_eval: Callable[[], None]):
        self.record, self.evaluate_fn, self.groups = record, evaluate_fn, groups
        self.score_ref, self.on_eval = score_ref, on_eval

    def __call__(self, tick: Tick) -> None:
        if not tick.at_eval:
            return
        r, ref = self.record, self.score_ref
        returns = self.evaluate_fn(tick.states, tick.step)
        scores = []
        for i in range(r.num_runs):
            rets = [float(x) for x in returns[i]]
            mean_ret = float(np.mean(rets))
            norm = float(normalized_score(mean_ret, ref["min"], ref["max"])) if ref.get("min") is not None else None
            r.evals[i].append(Eval(tick.step, rets, mean_ret, norm))
            tick.eval_rows[i] = {"return": mean_ret, "normalized_score": norm}
            scores.append((norm if norm is not None else mean_ret) if r.nan_steps[i] < 0 else None)
        tick.score_text = score_text(self.groups, scores)
        self.on_eval()


class MetricRows:
    """Per-run means of the train metrics since the last row, written with the evaluations as rows."""

    def __init__(self, record: Record, metrics_log, metric_names: Sequence[str]):
        self.record, self.mlog, self.names = record, metrics_log, list(metric_names)
        self.sums = np.zeros((len(self.names), record.num_runs))
        self.count = 0
        self.losses: Dict[str, float] = {}  # the means of the last row, over the runs (the progress line)

    def __call__(self, tick: Tick) -> None:
        r = self.record
        self.sums += tick.n * np.stack([np.asarray(tick.metrics[k][:r.num_runs], np.float64) for k in self.names])
        self.count += tick.n
        if not (tick.line_due or tick.at_ckpt or tick.at_row):
            return
        rows = []
        for i in range(r.num_runs):
            row = {"step": tick.step, "pruner": r.labels[i], "sparsity": r.sparsities[i], "seed": r.seeds[i]}
            row.update({k: float(self.sums[j, i] / self.count) for j, k in enumerate(self.names)})
            row.update(tick.eval_rows.get(i, {}))
            if r.nan_steps[i] >= 0:
                row["nan_step"] = int(r.nan_steps[i])
            rows.append(row)
        self.mlog.write(rows)
        self.losses = {k: float(np.nanmean(self.sums[j] / self.count)) if np.isfinite(self.sums[j]).any()
                       else float("nan") for j, k in enumerate(self.names)}
        self.sums[:] = 0.0
        self.count = 0


class Checkpoint:
    """A checkpoint every ``checkpoint_every`` steps, at the end, and when a signal came."""

    def __init__(self, record: Record, checkpointer, identity: Dict, stop=None):
        self.record, self.ckpt, self.identity, self.stop = record, checkpointer, identity, stop

    def __call__(self, tick: Tick) -> None:
        if not (tick.at_ckpt or tick.interrupted):
            return
        evals = [[e.to_json() for e in run] for run in self.record.evals]
        self.ckpt.save(tick.step, tick.states, {"step": tick.step, "evals": evals, "experiment": self.identity})
        if self.stop is not None:
            self.stop.last_checkpoint = tick.step


class Progress:
    """The progress line: right after compilation, at evaluations, and at least every ``every_s`` seconds."""

    def __init__(self, record: Record, rows: MetricRows, log: Log, every_s: float):
        self.record, self.rows, self.log, self.every_s = record, rows, log, every_s
        self.t_line, self.line_steps, self.line_time = time.time(), 0, 0.0
        self.t_compiled: Optional[float] = None

    def due(self, tick: Tick) -> bool:
        """Whether this chunk ends with a progress line (also counts the chunk's training time)."""
        if not tick.first:
            self.record.train_seconds += tick.seconds
            self.record.train_steps += tick.n
            self.line_steps += tick.n
            self.line_time += tick.seconds
        return (tick.first or tick.at_eval or tick.interrupted or tick.done
                or time.time() - self.t_line >= self.every_s)

    def __call__(self, tick: Tick) -> None:
        if not tick.line_due:
            return
        r = self.record
        if tick.first:
            self.log(f"compiled; first {tick.n} steps of {r.num_runs} runs in {tick.seconds:.1f}s")
            self.t_compiled = time.time()
            if tick.score_text:
                self.log(f"step {tick.step}/{tick.steps}{tick.score_text}")
        else:
            run_sps = self.line_steps / max(self.line_time, 1e-9)
            elapsed = time.time() - (self.t_compiled or time.time())
            eta = (tick.steps - tick.step) * elapsed / max(r.train_steps, 1)
            self.log(progress_line(tick.step, tick.steps, run_sps, r.num_runs, eta, self.rows.losses,
                                   tick.score_text))
        self.t_line, self.line_steps, self.line_time = time.time(), 0, 0.0


class Stop:
    """After the checkpoint of a chunk in which a signal came: the summary so far, then :class:`Interrupted`."""

    def __init__(self, stop, on_stop: Callable[[], None], log: Log, workdir: str):
        self.stop, self.on_stop, self.log, self.workdir = stop, on_stop, log, workdir

    def __call__(self, tick: Tick) -> None:
        if not tick.interrupted:
            return
        self.on_stop()
        self.log(f"interrupted at step {tick.step}; run the same command to resume")
        raise Interrupted(tick.step, self.stop.signum, self.workdir)
