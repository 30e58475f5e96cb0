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

from sparse_orl.config.job import ExperimentConfig, LogConfig
from sparse_orl.config.prune import PruneConfig
from sparse_orl.job.data import JobData, load_job_data
from sparse_orl.job.interrupts import StopSignals
from sparse_orl.job.narrow import narrow_config
from sparse_orl.job.program import Program, run_program
from sparse_orl.store.summary import Summary, read_summary, write_summary
from sparse_orl.store.workdir import check_workdir, claim_workdir, prepare_workdir

Log = Callable[[str], None]


def plan_programs(config: ExperimentConfig, job: JobData) -> List[Program]:
    """The compiled programs of a job: one, or ``main`` plus one per narrow level (see the module docstring)."""
    if not any(p.is_narrow for p in config.prunes):
        return [Program("", config)]
    info = job.info
    programs = []
    others = tuple(p for p in config.prunes if not p.is_narrow)
    if others:
        programs.append(Program("main", dataclasses.replace(
            config, prunes=others, workdir=os.path.join(config.workdir, "programs", "main"))))
    for s in config.sparsities:
        if s == 0.0:  # sparsity 0 is the dense network, trained once per seed in main (or below)
            continue
        cfg, record = narrow_config(config.agent_config, info.obs_dim, info.act_dim, info.max_action, s)
        name = f"narrow-{s:g}"
        programs.append(Program(name, dataclasses.replace(
            config, agent=cfg, prunes=(PruneConfig("dense"),), sparsities=(0.0,), width_multiplier=1.0,
            workdir=os.path.join(config.workdir, "programs", name)), {"sparsity": s, "record": record}))
    if not others and 0.0 in config.sparsities:  # --pruner=narrow --sparsity=0,...: the dense runs
        programs.insert(0, Program("main", dataclasses.replace(
            config, prunes=(PruneConfig("dense"),), sparsities=(0.0,),
            workdir=os.path.join(config.workdir, "programs", "main"))))
    return programs


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
    prepare_workdir(workdir)
    lock = claim_workdir(workdir) if main else None
    try:
        check_workdir(workdir, config, write=False)  # refuse another experiment before any work
        done = read_summary(workdir) if _summary_readable(workdir, log) else None
        if done is not None and done.complete and _finished(workdir, done):
            log(f"{workdir}: already complete ({config.steps} steps); nothing to do")
            return done
        job = load_job_data(config, warn=lambda m: log(f"warning: {m}"))
        programs = plan_programs(config, job)
        check_workdir(workdir, config, write=main)  # options, data and env are good: the workdir is claimed
        with StopSignals() as stop:
            return _run_programs(config, programs, job, log, logs, stop, stop_at, main)
    finally:
        if lock is not None:
            lock.release()


def _summary_readable(workdir: str, log: Log) -> bool:
    try:
        read_summary(workdir)
        return True
    except ValueError as e:
        log(f"warning: {e}; rebuilding it from the checkpoints")
        return False


def _finished(workdir: str, summary: Summary) -> bool:
    """A complete summary is trusted only with the final params it promises (a hand-edited or
    stale summary does not make a job complete)."""
    folders = [workdir] if not summary.programs else [os.path.join(workdir, p) for p in summary.programs.values()]
    return all(os.path.exists(os.path.join(f, "final", "params.npz")) for f in folders)


def _run_programs(config: ExperimentConfig, programs: List[Program], job: JobData, log: Log, logs: LogConfig,
                  stop, stop_at: Optional[int], main: bool) -> Summary:
    if len(programs) == 1 and not programs[0].name:
        return _run_one(programs[0], job, log, logs, stop, stop_at, main)
    runs, first = [], None
    for p in programs:
        if p.narrow is not None:
            widths = {k: v["widths"] for k, v in p.narrow["record"]["networks"].items()}
            log(f"[{p.name}] dense network of widths {widths}: {p.narrow['record']['kept']:,} kernel weights of the "
                f"scored networks (the {p.narrow['sparsity']:g}-sparse ones keep {p.narrow['record']['target']:,})")
        out = _run_one(p, job, lambda m, _n=p.name: log(f"[{_n}] {m}"), logs, stop, stop_at, main)
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


def _run_one(program: Program, job: JobData, log: Log, logs: LogConfig, stop, stop_at, main: bool) -> Summary:
    """One program in its own workdir (locked and claimed when it is not the job's own)."""
    if not program.name:
        return run_program(program, job, log, logs, stop, stop_at, main)
    prepare_workdir(program.workdir)
    lock = claim_workdir(program.workdir) if main else None
    try:
        check_workdir(program.workdir, program.config, write=main)
        done = read_summary(program.workdir) if _summary_readable(program.workdir, log) else None
        if done is not None and done.complete and _finished(program.workdir, done):
            log(f"{program.workdir}: already complete ({program.config.steps} steps); nothing to do")
            return done
        return run_program(program, job, log, logs, stop, stop_at, main)
    finally:
        if lock is not None:
            lock.release()
