"""One training job: dataset -> programs -> (masks at init, vmapped sparse training, evals) -> summary.

``run_experiment(config)`` plans the job's compiled programs (:func:`plan_programs`): one holds
every run, unless the job has the narrow dense control, whose networks have other shapes: then
the other methods' runs are the program ``main`` and each narrow level a program of its own, each
in ``<workdir>/programs/<name>/`` (a full workdir: resumable on its own), and
``<workdir>/summary.json`` merges them. Every program runs the same way
(:func:`sparse_orl.job.program.run_program`). Re-running the same config resumes.

Files in a program's workdir: ``config.json``, ``summary.json``, ``metrics.jsonl``, ``checkpoints/``
(orbax), ``final/params.npz`` + ``final/runs.json``.

Several processes (``jax.distributed.initialize()``): every process runs ``run_experiment`` with
the same config on the same (shared) workdir; each builds the same initial states from the seeds,
fills its own shards of the global mesh, evaluates the runs its devices hold, and the returns are
gathered. Only process 0 writes ``config.json``, summaries, metrics, ``final/`` and logs; orbax
checkpoints are written by every process (each its own shards), so the workdir must be on a file
system all processes share.

A workdir is claimed (``config.json`` written) only once the job can start: the options, the
dataset, the environment and the preprocessing have been checked. Until then a different
command may take it over; after, a different command is refused, naming what differs.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, List, Optional

import jax

from sparse_orl.config.job import ExperimentConfig, LogConfig, comparable_config
from sparse_orl.config.prune import PruneConfig
from sparse_orl.job.data import JobData, load_job_data
from sparse_orl.job.interrupts import StopSignals
from sparse_orl.job.narrow import narrow_config
from sparse_orl.job.program import FORMAT_FILE, Program, run_program
from sparse_orl.store.atomic import atomic_write_json, read_json
from sparse_orl.store.summary import Summary, read_summary, write_summary
from sparse_orl.store.workdir import check_workdir, claim_workdir, is_claimed, prepare_workdir, release_workdir
from sparse_orl.trainer.compact import backend_allows



Log = Callable[[str], None]


def plan_programs(config: ExperimentConfig, job: JobData, compact: bool = False) -> List[Program]:
    """The compiled programs of a job: one, or ``main`` plus one per narrow level (see the module docstring).

    ``compact``: the job may train compact kernels, so its dense runs (sparsity 0, nothing to prune) get
    a program of their own, ``dense``, that trains them dense whatever the format."""
    narrow = any(p.is_narrow for p in config.prunes)
    others = tuple(p for p in config.prunes if not p.is_narrow)
    has_dense = any(sp == 0.0 for _, _, sp in config.runs)
    has_sparse = any(sp != 0.0 and not config.prunes[m].is_narrow for m, _, sp in config.runs)
    split_dense = compact and has_dense and has_sparse
    if not narrow and not split_dense:
        return [Program("", config)]

    def sub(name, **kw):
        return dataclasses.replace(config, workdir=os.path.join(config.workdir, "programs", name), **kw)

    programs = []
    if split_dense or (narrow and not others and 0.0 in config.sparsities):
        programs.append(Program("dense", sub("dense", prunes=(PruneConfig("dense"),), sparsities=(0.0,))))
    if has_sparse or (others and not split_dense):
        levels = tuple(s for s in config.sparsities if s != 0.0) if split_dense else config.sparsities
        kept = tuple(p for p in others if not p.is_dense) if split_dense else others
        programs.append(Program("main", sub("main", prunes=kept, sparsities=levels)))
    info = job.info
    for s in config.sparsities:
        if not narrow or s == 0.0:  # sparsity 0 is the dense network, trained once per seed above
            continue
        cfg, record = narrow_config(config.agent_config, info.obs_dim, info.act_dim, info.max_action, s)
        name = f"narrow-{s:g}"
        programs.append(Program(name, sub(name, agent=cfg, prunes=(PruneConfig("dense"),), sparsities=(0.0,),
                                          width_multiplier=1.0), {"sparsity": s, "record": record}))
    return programs


def job_format(config: ExperimentConfig, workdir: str) -> str:
    """"compact" if the job may train compact kernels, else "masked": what the workdir recorded when it
    was claimed (a workdir claimed before formats existed: masked), else what ``--sparse_format`` and
    this backend allow. An explicit format that contradicts the workdir's is refused."""
    path = os.path.join(workdir, FORMAT_FILE)
    recorded = None
    if is_claimed(workdir):  # a start that failed before anything trained binds nothing
        recorded = read_json(path, "format file").get("format", "masked") if os.path.exists(path) else "masked"
    if recorded is not None:
        if config.sparse_format not in ("auto", recorded):
            raise ValueError(f"--sparse_format={config.sparse_format}: {workdir} was trained in the {recorded} format; "
                             f"resume it with --sparse_format={recorded} (or auto), or use a new --workdir")
        return recorded
    ok, why = backend_allows(config.sparse_format)
    if config.sparse_format == "compact" and not ok:
        raise ValueError(f"--sparse_format=compact cannot run here: {why}")
    return "compact" if ok else "masked"


def run_experiment(config: ExperimentConfig, log: Log = print, stop_at: Optional[int] = None,
                   logs: LogConfig = LogConfig()) -> Summary:
    """Train, evaluate, checkpoint and summarize every run of ``config``; returns the summary.

    ``stop_at`` ends the work abruptly once that step is reached, without a final checkpoint,
    exactly as a kill would (tests use it to check resuming).
    """
    config.validate()
    main = jax.process_index() == 0  # the process that writes files and logs
    if not main:
        log = lambda _m: None  # noqa: E731
    workdir = config.workdir
    created = prepare_workdir(workdir)
    lock = claim_workdir(workdir) if main else None
    try:
        check_workdir(workdir, config, write=False)  # refuse another experiment before any work
        done = read_summary(workdir) if _summary_readable(workdir, log) else None
        if done is not None and _finished(workdir, done, config):
            log(f"{workdir}: already complete ({config.steps} steps); nothing to do")
            return done
        job = load_job_data(config, warn=lambda m: log(f"warning: {m}"))
        if config.agent.compute_dtype == "bfloat16" and jax.default_backend() == "cpu":
            log("warning: --compute_dtype=bfloat16 is slower than float32 on a CPU (it has no bfloat16 matmul units); "
                "it pays on GPUs and TPUs")
        fmt = job_format(config, workdir)
        programs = plan_programs(config, job, compact=fmt == "compact")
        check_workdir(workdir, config, write=main)  # options, data and env are good: the workdir is claimed
        if main:  # keep the layer plan a single-program job recorded there (its resume trains that layout)
            path = os.path.join(workdir, FORMAT_FILE)
            old = read_json(path, "format file") if os.path.exists(path) and is_claimed(workdir) else {}
            atomic_write_json(path, dict(old, format=fmt))
        with StopSignals() as stop:
            return _run_programs(config, programs, job, log, logs, stop, stop_at, main, fmt)
    finally:
        release_workdir(workdir, lock, created)


def _summary_readable(workdir: str, log: Log) -> bool:
    try:
        read_summary(workdir)
        return True
    except ValueError as e:
        log(f"warning: {e}; rebuilding it from the checkpoints")
        return False


def _finished(workdir: str, summary: Summary, config: ExperimentConfig) -> bool:
    """Whether the job is done: a complete summary of this very experiment (its own recorded config, not
    ``config.json``, which can be edited by hand) with the final params it promises."""
    if not summary.complete or comparable_config(summary.config) != comparable_config(config.to_dict()):
        return False
    folders = [workdir] if not summary.programs else [os.path.join(workdir, p) for p in summary.programs.values()]
    return all(os.path.exists(os.path.join(f, "final", "params.npz")) for f in folders)


def _run_programs(config: ExperimentConfig, programs: List[Program], job: JobData, log: Log, logs: LogConfig,
                  stop, stop_at: Optional[int], main: bool, fmt: str) -> Summary:
    if len(programs) == 1 and not programs[0].name:
        return _run_one(programs[0], job, log, logs, stop, stop_at, main, fmt)
    runs, first = [], None
    for p in programs:
        if p.narrow is not None:
            widths = {k: v["widths"] for k, v in p.narrow["record"]["networks"].items()}
            log(f"[{p.name}] dense network of widths {widths}: {p.narrow['record']['kept']:,} kernel weights of the "
                f"scored networks (the {p.narrow['sparsity']:g}-sparse ones keep {p.narrow['record']['target']:,})")
            if p.narrow["record"].get("warning"):
                log(f"[{p.name}] warning: {p.narrow['record']['warning']}")
        out = _run_one(p, job, lambda m, _n=p.name: log(f"[{_n}] {m}"), logs, stop, stop_at, main,
                       fmt if p.name == "main" or not p.name else "masked")
        if not out.complete:
            return out
        first = first or out
        runs += [dataclasses.replace(r, program=p.name) for r in out.runs]
    summary = dataclasses.replace(first, config=config.to_dict(), runs=runs, complete=True,
                                  programs={p.name: os.path.join("programs", p.name) for p in programs})
    if main:
        write_summary(config.workdir, summary)
    log(f"done: {os.path.join(config.workdir, 'summary.json')}")
    return summary


def _run_one(program: Program, job: JobData, log: Log, logs: LogConfig, stop, stop_at, main: bool,
             fmt: str) -> Summary:
    """One program in its own workdir (locked and claimed when it is not the job's own)."""
    if not program.name:
        return run_program(program, job, log, logs, stop, stop_at, main, fmt)
    created = prepare_workdir(program.workdir)
    lock = claim_workdir(program.workdir) if main else None
    try:
        check_workdir(program.workdir, program.config, write=main)
        done = read_summary(program.workdir) if _summary_readable(program.workdir, log) else None
        if done is not None and _finished(program.workdir, done, program.config):
            log(f"{program.workdir}: already complete ({program.config.steps} steps); nothing to do")
            return done
        return run_program(program, job, log, logs, stop, stop_at, main, fmt)
    finally:
        release_workdir(program.workdir, lock, created)
