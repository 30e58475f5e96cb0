"""``sparse_orl.train(...)`` / ``sparse_orl.train_sweep(...)``: a training job or a sweep from Python, the same
code paths as ``launch.train`` / ``launch.sweep``.

::

    import sparse_orl
    res = sparse_orl.train(dataset="sb3/halfcheetah/expert-v0", algo="bc", bc_vae_only=True,
                           pruner=["none", "snip", "erk_random"], sparsity=[0.95], seeds=[0], steps=30000)
    res.table()              # one row per run: pruner, sparsity, seed, step, normalized_score, ...
    res.export(2, "policy.sorl")
    sparse_orl.deploy.Policy.load("policy.sorl").act(obs)

The keywords are ``launch.train``'s flag names (``python -m launch.train --help``), with
Python values: lists for the comma-list flags, booleans, numbers. Both build the job with
:func:`sparse_orl.options.experiment_config` and run it with
:func:`sparse_orl.experiment.run_experiment`. Re-running with the same ``workdir`` resumes.
``sparse_orl.train_sweep`` takes ``launch.sweep``'s flag names the same way
(:func:`sparse_orl.sweep.options.sweep_config`, :func:`sparse_orl.sweep.run_sweep`).
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Callable, Dict, List, Optional


@dataclasses.dataclass
class Result:
    """A finished (or interrupted) job: its workdir and summary."""

    workdir: str
    summary: Dict

    @property
    def complete(self) -> bool:
        return bool(self.summary.get("complete"))

    def table(self, final_only: bool = True) -> List[Dict]:
        """Rows of run results: run index, pruner, sparsity, seed, step, return, normalized_score, status.

        ``final_only``: the last evaluation of each run; else one row per evaluation.
        """
        rows = []
        for i, r in enumerate(self.summary.get("runs", [])):
            evals = r.get("evals") or [{"step": None, "return": None, "normalized_score": None}]
            for e in (evals[-1:] if final_only else evals):
                rows.append({"run": i, "pruner": r["pruner"], "sparsity": r["sparsity"], "seed": r["seed"],
                             "step": e["step"], "return": e["return"], "normalized_score": e["normalized_score"],
                             "status": r["status"]})
        return rows

    def export(self, run: int, path: str, **kw) -> int:
        """Write run ``run`` as a compact deploy file (:func:`sparse_orl.export.export_run`); its bytes."""
        from sparse_orl.export import export_run

        if not self.complete:
            raise ValueError(f"{self.workdir}: the job is not complete; train it to the end before exporting")
        if not 0 <= run < len(self.summary["runs"]):
            raise ValueError(f"run must be in [0, {len(self.summary['runs'])}), got {run}")
        return export_run(self._program_workdir(run), self._program_index(run), path, **kw)

    def _program_workdir(self, run: int) -> str:
        r = self.summary["runs"][run]
        program = r.get("program")
        return os.path.join(self.workdir, "programs", program) if program else self.workdir

    def _program_index(self, run: int) -> int:
        program = self.summary["runs"][run].get("program")
        if not program:
            return run
        return [i for i, r in enumerate(self.summary["runs"]) if r.get("program") == program].index(run)


def train(workdir: Optional[str] = None, log: Optional[Callable[[str], None]] = print, **options) -> Result:
    """Train one job (every seed x sparsity x pruner) and return its :class:`Result`.

    ``workdir=None``: a new temporary folder (printed; it is not deleted). ``log``: where the
    progress lines go (None: nowhere). A SIGINT/SIGTERM stops the job after a checkpoint
    and raises :class:`sparse_orl.interrupts.Interrupted`.
    """
    from sparse_orl import options as options_lib
    from sparse_orl.experiment import run_experiment

    log = log or (lambda _m: None)
    if workdir is None:
        workdir = tempfile.mkdtemp(prefix="sparse_orl-")
        log(f"workdir: {workdir}")
    opts = options_lib.Options(options_lib.train_options(), dict(options, workdir=os.fspath(workdir)))
    config, logs = options_lib.experiment_config(opts, warn=lambda m: log(f"warning: {m}"))
    summary = run_experiment(config, log=log, logs=logs)
    return Result(config.workdir, summary)


@dataclasses.dataclass
class SweepResult:
    """What one call of :func:`train_sweep` did: program names ``ran`` / ``done`` (finished before) /
    ``locked`` (another job holds them), and the sweep's results table so far."""

    workdir: str
    ran: List[str]
    done: List[str]
    locked: List[str]

    def rows(self) -> List[Dict]:
        """Rows of ``results.jsonl`` (one per run and evaluation; :func:`sparse_orl.results.load_results`)."""
        from sparse_orl.results import load_results

        return load_results(self.workdir)


def train_sweep(workdir: str, log: Optional[Callable[[str], None]] = print, dry_run: bool = False, num_shards: int = 1,
          shard_index: int = 0, **options) -> SweepResult:
    """Run a sweep (algos x datasets x pruners x levels x seeds; :mod:`sparse_orl.sweep`), or this
    shard of it, and return a :class:`SweepResult`. Re-running with the same ``workdir`` resumes;
    ``dry_run`` prints the plan (programs, runs, estimated time and memory) and trains nothing.
    """
    from sparse_orl import options as options_lib
    from sparse_orl.sweep import options as sweep_options
    from sparse_orl.sweep import run_sweep

    log = log or (lambda _m: None)
    opts = options_lib.Options(sweep_options.sweep_options(), dict(options, workdir=os.fspath(workdir)),
                               command="launch.sweep")
    config = sweep_options.sweep_config(opts)
    out = run_sweep(config, num_shards=num_shards, shard_index=shard_index, log=log, dry_run=dry_run)
    return SweepResult(config.workdir, list(out["ran"]), list(out["done"]), list(out["locked"]))
