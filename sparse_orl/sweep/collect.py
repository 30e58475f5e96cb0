"""A finished sweep's results table: every planned program's summary -> ``results.csv`` / ``results.jsonl``.

The rows and the file formats are :mod:`sparse_orl.report.results`; this module adds
which programs belong to the sweep (its plan), and refuses an unfinished one.
"""
from __future__ import annotations

from typing import Dict

from sparse_orl.report.results import Log, log_diverged, read_summaries, rows_from_summary, tidy_table, write_results
from sparse_orl.sweep.config import load_sweep
from sparse_orl.sweep.plan import plan


def collect_results(sweep_workdir: str, log: Log = print, write: bool = True,
                    allow_incomplete: bool = False) -> Dict:
    """One tidy table from every program's ``summary.json``.

    Returns {"rows", "columns", "diverged", "unfinished", "csv", "jsonl"}. With
    ``write``, writes ``results.csv``, ``results.jsonl`` and ``diverged.json``
    atomically. Unfinished programs raise ``ValueError`` unless
    ``allow_incomplete`` (then they are left out and listed). A corrupt summary
    raises ``ValueError`` naming the file.
    """
    sweep = load_sweep(sweep_workdir)
    done, unfinished = read_summaries((p.name, p.workdir) for p in plan(sweep))
    rows, diverged = [], []
    for name, _, summary in done:
        r, d = rows_from_summary(summary, name)
        rows += r
        diverged += d
    if unfinished and not allow_incomplete:
        raise ValueError(f"{len(unfinished)} program(s) of {sweep_workdir} are not finished: "
                         f"{', '.join(unfinished)}; run (or resume) the sweep first")
    rows, columns = tidy_table(rows)
    log_diverged(diverged, log)
    out = {"rows": rows, "columns": columns, "diverged": diverged, "unfinished": unfinished,
           "csv": None, "jsonl": None}
    if write:
        out["csv"], out["jsonl"] = write_results(sweep_workdir, rows, columns, diverged, log)
    return out
