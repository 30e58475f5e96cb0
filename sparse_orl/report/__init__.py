"""Reports from workdirs: summaries -> rows -> tables and figures (``report.md`` and PNGs).

:func:`make_report` draws a report; :func:`final_table` / :func:`finish_job` are what a finished
job prints. Importing this package does not import jax or the trainer.
"""
from sparse_orl.report.end_of_job import final_table, finish_job
from sparse_orl.report.make import make_report

__all__ = ["final_table", "finish_job", "make_report"]
