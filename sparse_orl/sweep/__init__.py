"""A sweep: algos x pruners x sparsity levels x datasets x seeds, as a few resumable programs.

Planning (:mod:`~sparse_orl.sweep.plan`). Runs that share shapes (same agent config
and dataset) go into one :class:`~sparse_orl.job.run.ExperimentConfig` -- one
compiled program with every (pruner, seed, sparsity) run vmapped; dense ("none")
runs once per seed. ``max_runs_per_program`` splits a program over seeds first,
then over pruners, then over sparsity levels. Each program trains in its own workdir
``<sweep>/programs/<name>``, ``name = <algo>_<dataset>[_p<i>of<n>]_<hash>``
(the hash covers the program's whole config except the workdir).
``<sweep>/sweep.json`` records the grid; a different grid is refused.

Running (:mod:`~sparse_orl.sweep.run`). Programs are dealt round-robin to
``num_shards`` jobs in plan order; all jobs share the sweep workdir. A job holds an
exclusive ``fcntl.flock`` on ``<sweep>/locks/<name>.lock`` (:mod:`sparse_orl.store.locks`)
while it runs a program (the kernel drops it when the job dies, SIGKILL included),
and skips programs another job holds. Finished programs (``summary.json`` complete)
are skipped; unfinished ones resume from their checkpoints
(:func:`~sparse_orl.job.run.run_experiment`). A corrupt ``summary.json`` is
moved aside and rebuilt from the checkpoints. ``--dry_run`` prints the plan with
estimates (:mod:`~sparse_orl.sweep.estimate`).

Results (:mod:`~sparse_orl.sweep.collect`, formats in :mod:`sparse_orl.report.results`).
Once every program is complete, :func:`collect_results` writes one tidy table,
``results.csv`` and ``results.jsonl`` (atomically): one row per (run, evaluation)
with :data:`BASE_COLUMNS` plus ``sparsity_<network>`` (the actual fraction of
prunable weights removed). Diverged runs are left out and listed in
``diverged.json`` and the log.

This package re-exports the public names of its modules: ``from sparse_orl import
sweep as sweep_lib; sweep_lib.plan(...)``.
"""
from sparse_orl.report.results import BASE_COLUMNS, SWEEP_FILE, Log, columns_of, load_results, rows_from_summary
from sparse_orl.store.locks import FileLock, program_lock
from sparse_orl.sweep.collect import collect_results
from sparse_orl.sweep.config import (SWEEP_VERSION, ShardConfig, SweepConfig, build_sweep, check_sweep_workdir,
                                     load_sweep, sweep_options)
from sparse_orl.sweep.estimate import estimate_programs
from sparse_orl.sweep.plan import Program, algo_label, describe_runs, format_plan, plan, shard, split_runs
from sparse_orl.sweep.run import run_sweep
from sparse_orl.sweep.status import checkpoint_steps, program_status

__all__ = [
    "BASE_COLUMNS", "SWEEP_FILE", "SWEEP_VERSION", "FileLock", "Log", "Program", "ShardConfig", "SweepConfig",
    "algo_label", "build_sweep", "check_sweep_workdir", "checkpoint_steps", "collect_results", "columns_of",
    "describe_runs", "estimate_programs", "format_plan", "load_results", "load_sweep", "plan", "program_lock",
    "program_status", "rows_from_summary", "run_sweep", "shard", "split_runs", "sweep_options",
]
