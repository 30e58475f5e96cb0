"""Running a sweep: this shard's programs one after another, each claimed under its file lock.

Programs are dealt round-robin to ``num_shards`` jobs in plan order; all jobs
share the sweep workdir. A job holds an exclusive lock on
``<sweep>/locks/<name>.lock`` (:func:`sparse_orl.store.locks.program_lock`) while it
runs a program (the kernel drops it when the job dies, SIGKILL included), and
skips programs another job holds. Finished programs (``summary.json`` complete)
are skipped; unfinished ones resume from their checkpoints
(:func:`~sparse_orl.job.run_experiment`). A corrupt ``summary.json`` is
moved aside and rebuilt from the checkpoints. Once every program is complete,
the job that notices writes the results table (:func:`~sparse_orl.sweep.collect.collect_results`).

Several processes (``--distributed``) run every program together: process 0
alone takes the locks, writes and logs, and broadcasts its decisions.
"""
from __future__ import annotations

import os
import time
from typing import Dict

import jax
import numpy as np

from sparse_orl.config import LogConfig
from sparse_orl.job import run_experiment
from sparse_orl.report.make import results_table
from sparse_orl.report.results import Log
from sparse_orl.store.locks import FileLock, program_lock
from sparse_orl.sweep.collect import collect_results
from sparse_orl.sweep.config import SweepConfig, check_sweep_workdir
from sparse_orl.sweep.estimate import estimate_programs
from sparse_orl.sweep.plan import Program, describe_runs, format_plan, plan, shard
from sparse_orl.sweep.status import checkpoint_steps, program_status
from jax.experimental import multihost_utils
from sparse_orl.data import load_dataset_info

_SKIP_DONE, _SKIP_LOCKED, _RUN = 0, 1, 2


def _silent(_message: str) -> None:
    pass


def _process0_decides(value: int) -> int:
    """Process 0's ``value`` on every process (the identity with one process). A collective."""
    if jax.process_count() == 1:
        return value

    return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def _claim(p: Program, lock: FileLock, log: Log) -> int:
    """Whether this job runs program ``p``: skip it (done, or another job holds its lock) or
    run it, holding ``lock``. A corrupt ``summary.json`` is moved aside (rebuilt from checkpoints)."""
    if program_status(p) == "done":
        log(f"[{p.name}] complete; skipping")
        return _SKIP_DONE
    if not lock.acquire():
        log(f"[{p.name}] locked by {lock.holder()}; skipping (another job is running it)")
        return _SKIP_LOCKED
    status = program_status(p)  # again, under the lock: another job may have finished it
    if status == "done":
        lock.release()
        log(f"[{p.name}] complete; skipping")
        return _SKIP_DONE
    if status == "corrupt":
        bad = os.path.join(p.workdir, "summary.json")
        aside = f"{bad}.corrupt-{int(time.time())}"
        os.replace(bad, aside)
        log(f"[{p.name}] WARNING: summary.json was corrupt or truncated; moved to {aside}, "
            "rebuilding it from the checkpoints")
    return _RUN


def _check_datasets(programs, sweep_workdir: str, log: Log) -> None:
    """Load every dataset this shard will train on once, before any training: a bad id or a damaged
    file stops the sweep now, with one line naming it, not hours later at its first program.
    Finished programs are left out, and (one process) so are programs another job holds the lock of:
    that job trains them."""

    todo = []
    for p in programs:
        if program_status(p) == "done":
            continue
        if jax.process_count() == 1:
            lock = program_lock(sweep_workdir, p.name)
            if not lock.acquire():
                continue
            lock.release()
        todo.append(p)
    for dataset, env in dict.fromkeys((p.config.dataset, p.config.env) for p in todo):
        try:
            load_dataset_info(dataset, env_id=env)
        except (ValueError, FileNotFoundError) as e:
            raise ValueError(f"--datasets: {e}") from None


def run_sweep(sweep: SweepConfig, num_shards: int = 1, shard_index: int = 0, log: Log = print,
              dry_run: bool = False, estimate: bool = True) -> Dict:
    """Run this shard's programs (or, with ``dry_run``, print the plan). Returns what happened:
    {"ran", "done", "locked"} program names and "results" (the results.csv path, or None)."""
    sweep.validate()
    programs = plan(sweep)
    mine = shard(programs, num_shards, shard_index)
    if dry_run:
        check_sweep_workdir(sweep, write=False)
        log(format_plan(sweep, programs, num_shards, shard_index,
                        estimate_programs(mine, log) if estimate and mine else None))
        return {"ran": [], "done": [], "locked": [], "results": None}
    # several processes (--distributed) run every program together: process 0 alone takes
    # the locks, writes and logs, and its decisions are broadcast so all processes agree
    main = jax.process_index() == 0
    if not main:
        log = _silent
    check_sweep_workdir(sweep, write=main, programs=[p.name for p in programs])
    _check_datasets(mine, sweep.workdir, log)
    total_runs = sum(p.num_runs for p in programs)
    log(f"sweep {sweep.workdir}: {len(programs)} program(s), {total_runs} runs; shard {shard_index}/{num_shards} "
        f"has {len(mine)}")
    out = {"ran": [], "done": [], "locked": [], "results": None}
    for p in mine:
        lock = program_lock(sweep.workdir, p.name)
        decision = _SKIP_DONE
        if main:
            decision = _claim(p, lock, log)
        decision = _process0_decides(decision)
        if decision == _SKIP_DONE:
            out["done"].append(p.name)
            continue
        if decision == _SKIP_LOCKED:
            out["locked"].append(p.name)
            continue
        try:
            log(f"[{p.name}] {p.num_runs} runs {describe_runs(p.config)}"
                + (f"; resuming (checkpoints at steps {checkpoint_steps(p.workdir)})"
                   if checkpoint_steps(p.workdir) else ""))
            run_experiment(p.config, log=lambda m, _n=p.name: log(f"[{_n}] {m}"), logs=LogConfig(report=False))
            out["ran"].append(p.name)
        finally:
            lock.release()
    if not main:
        return out
    statuses = {p.name: program_status(p) for p in programs}
    unfinished = [n for n, s in statuses.items() if s != "done"]
    if unfinished:
        log(f"{len(programs) - len(unfinished)}/{len(programs)} programs complete; results.csv is written once "
            f"all are (unfinished: {', '.join(unfinished)}). Run the other shards, or re-run this command.")
    else:
        res = collect_results(sweep.workdir, log=log)
        out["results"] = res["csv"]
        log("\n" + results_table(sweep.workdir))
    return out
