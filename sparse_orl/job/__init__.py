"""One training job: its data, its programs, the host loop and its hooks, evaluation, progress, signals.

:func:`run_experiment` is the entry point (:mod:`sparse_orl.job.run`).
"""
from sparse_orl.job.interrupts import Interrupted, StopSignals
from sparse_orl.job.run import plan_programs, run_experiment

__all__ = ["Interrupted", "StopSignals", "plan_programs", "run_experiment"]
