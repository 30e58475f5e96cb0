"""``sparse_orl.train(...)`` / ``sparse_orl.train_sweep(...)`` / ``Result.load(...)``: jobs and sweeps from
Python, the same code paths as ``launch.train`` / ``launch.sweep``.

::

    import os
    os.environ.setdefault("MINARI_DATASETS_PATH", "../shared/datasets")
    import sparse_orl
    res = sparse_orl.train(dataset="sb3/halfcheetah/expert-v0", algo="bc", bc_vae_only=True,
                           pruner=["dense", "snip", "erk_random"], sparsity=0.95, seeds=[0], steps=30000)
    res.table(pruner="erk_random")     # one row per run: pruner, sparsity, seed, step, score, ...
    res.export("policy.sorl", pruner="erk_random", seed=0)
    policy = sparse_orl.deploy.Policy.load("policy.sorl")
    obs = np.zeros(policy.obs_dim, np.float32)
    policy.act(obs)

The keywords are ``launch.train``'s flag names (``python -m launch.train --help``; the device options
too, which must come before anything starts JAX) with typed Python values (numbers, booleans, lists,
numpy scalars and arrays, paths); ``agent=`` (an algorithm's config) and ``prunes=``
(``PruneConfig`` objects) may stand for the algorithm and pruning options. Both build the job with
:func:`sparse_orl.config.build_job`. Re-running with the same ``workdir`` resumes; ``Result.load(workdir)``
reads any finished workdir.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Callable, Dict, List, Optional

from sparse_orl.fields import specs
from sparse_orl.store.summary import Summary, read_summary
from sparse_orl.trainer.devices import DeviceConfig, apply_devices
import time
from sparse_orl.config import build_job
from sparse_orl.job import run_experiment
from sparse_orl.report import finish_job
from sparse_orl.sweep import build_sweep, run_sweep
from sparse_orl.config.prune import PruneConfig
from sparse_orl.export import export_run
from sparse_orl.report.results import load_results

Log = Optional[Callable[[str], None]]


@dataclasses.dataclass
class Result:
    """A finished (or interrupted) job: its workdir and summary."""

    workdir: str
    summary: Summary

    @classmethod
    def load(cls, workdir) -> "Result":
        """The result of the job in ``workdir`` (finished or not); ``FileNotFoundError`` without a summary."""
        workdir = os.fspath(workdir)
        summary = read_summary(workdir)
        if summary is None:
            raise FileNotFoundError(f"{workdir} holds no summary.json (not a launch.train / sparse_orl.train workdir, "
                                    "or the job has not started)")
        return cls(workdir, summary)

    @property
    def complete(self) -> bool:
        return self.summary.complete

    def table(self, final_only: bool = True, pruner: Optional[str] = None, sparsity: Optional[float] = None,
              seed: Optional[int] = None) -> List[Dict]:
        """Rows of run results: run index, pruner, sparsity, seed, step, return, normalized_score, score
        (the mean of the run's last evaluations), status; ``final_only``: one row per run (its last
        evaluation), else one per evaluation. ``pruner`` / ``sparsity`` / ``seed`` filter the rows
        (``pruner`` as given to ``train`` or as printed: "erk_random", "none" / "dense")."""

        want = None
        if pruner is not None:
            try:
                want = PruneConfig(pruner=pruner).label
            except ValueError:
                want = pruner
        rows = []
        for i, r in enumerate(self.summary.runs):
            if (want is not None and r.pruner != want) or (sparsity is not None and abs(r.sparsity - sparsity) > 1e-9) \
                    or (seed is not None and r.seed != seed):
                continue
            evals = r.evals or [None]
            for e in (evals[-1:] if final_only else evals):
                rows.append({"run": i, "pruner": r.pruner, "sparsity": r.sparsity, "seed": r.seed,
                             "step": e.step if e else None, "return": e.mean_return if e else None,
                             "normalized_score": e.normalized_score if e else None, "score": r.score(),
                             "status": r.status})
        return rows

    def export(self, path, run: Optional[int] = None, *, pruner: Optional[str] = None,
               sparsity: Optional[float] = None, seed: Optional[int] = None, **kw) -> int:
        """Write one run as a compact deploy file at ``path`` (:func:`sparse_orl.export.export_run`); its bytes.
        The run: its index, or its ``pruner`` / ``sparsity`` / ``seed``."""

        if not self.complete:
            raise ValueError(f"{self.workdir}: the job is not complete; train it to the end before exporting")
        if isinstance(path, int) and not isinstance(run, int):  # the older order: export(run, path)
            path, run = run, path
        return export_run(self.workdir, run, os.fspath(path), pruner=pruner, sparsity=sparsity, seed=seed, **kw)


def train(workdir=None, log: Log = print, agent=None, prunes=None, **options) -> Result:
    """Train one job (every seed x sparsity x pruner) and return its :class:`Result`.

    ``workdir=None``: a new temporary folder (printed; it is not deleted). ``log``: where the
    progress lines go (None: nowhere). A SIGINT/SIGTERM stops the job after a checkpoint
    and raises :class:`sparse_orl.job.Interrupted` (its ``step`` says where).
    """


    log = log or (lambda _m: None)
    placeholder = workdir is None
    devices = _device_options(options)
    given = dict(options, workdir=os.fspath(workdir) if workdir is not None else "<temporary>")
    config, logs = build_job(given, warn=lambda m: log(f"warning: {m}"), agent=agent, prunes=prunes)
    if devices is not None:  # before anything touches a JAX device; refused once JAX has started differently
        apply_devices(devices, config.runs_per_program)
    if placeholder:  # every option checked first: a refused call leaves no folder behind
        config = dataclasses.replace(config, workdir=tempfile.mkdtemp(prefix="sparse_orl-"))
        log(f"workdir: {config.workdir}")
    t0 = time.time()
    summary = run_experiment(config, log=log, logs=logs)
    if summary.complete:
        finish_job(summary, config.workdir, log, logs.report, time.time() - t0)
    return Result(config.workdir, summary)


def _device_options(options: Dict) -> Optional[DeviceConfig]:
    """The device options among ``options`` (removed from it) as a :class:`DeviceConfig`, or None."""
    names = {s.flag: s.name for s in specs(DeviceConfig)}
    given = {names[k]: options.pop(k) for k in list(options) if k in names}
    return DeviceConfig(**given) if given else None


@dataclasses.dataclass
class SweepResult:
    """What one call of :func:`train_sweep` did: program names ``ran`` / ``done`` (finished before) /
    ``locked`` (another job holds them), and the sweep's results table so far."""

    workdir: str
    ran: List[str]
    done: List[str]
    locked: List[str]

    def rows(self) -> List[Dict]:
        """Rows of ``results.jsonl`` (one per run and evaluation; :func:`sparse_orl.report.results.load_results`)."""

        return load_results(self.workdir)


def train_sweep(workdir, log: Log = print, **options) -> SweepResult:
    """Run a sweep (algos x datasets x pruners x levels x seeds; :mod:`sparse_orl.sweep`), or one shard
    of it (``num_shards``, ``shard_index``), and return a :class:`SweepResult`. Re-running with the same
    ``workdir`` resumes; ``dry_run=True`` prints the plan (programs, runs, estimated time and memory).
    The keywords are ``launch.sweep``'s flag names."""

    log = log or (lambda _m: None)
    devices = _device_options(options)
    sweep, shard = build_sweep(dict(options, workdir=os.fspath(workdir)))
    if devices is not None:
        apply_devices(devices, sweep.runs_per_program)
    out = run_sweep(sweep, num_shards=shard.num_shards, shard_index=shard.shard_index, log=log,
                    dry_run=shard.dry_run)
    return SweepResult(sweep.workdir, list(out["ran"]), list(out["done"]), list(out["locked"]))
