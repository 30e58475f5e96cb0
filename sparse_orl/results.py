"""A sweep's results table, without jax: summaries -> tidy rows, ``results.csv`` / ``results.jsonl``.

One row per (run, evaluation) with :data:`BASE_COLUMNS` plus ``sparsity_<network>``
(the actual fraction of prunable weights removed) and ``program``. Diverged runs
are not rows; they are returned (and written to ``diverged.json``) separately.
Which programs a sweep holds is the plan's business (:mod:`sparse_orl.sweep`);
this module only reads and writes files, with numpy, the standard library and
:mod:`sparse_orl.io_utils`, so the report code can use it without the trainer.
"""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Callable, Dict, Iterable, List, Sequence, Tuple

from sparse_orl.io_utils import atomic_write_json, atomic_write_text, read_json

SWEEP_FILE = "sweep.json"  # what marks a sweep workdir (written by sparse_orl.sweep.check_sweep_workdir)
NETWORK_ORDER = ("actor", "critic", "vae")
BASE_COLUMNS = ("algo", "algo_name", "pruner", "sparsity", "dataset", "env", "seed", "step", "returns", "return",
                "normalized_score", "weights_kept")
# Rows also carry "train_steps_per_s" (the report's speed table), a timing: it stays out of the
# results table so that a resumed sweep's results are byte-identical to an uninterrupted one.

Log = Callable[[str], None]


def read_summaries(programs: Iterable[Tuple[str, str]]) -> Tuple[List[Tuple[str, str, Dict]], List[str]]:
    """For (name, workdir) pairs: ([(name, workdir, summary)] of complete programs, names of the others).

    A program without ``summary.json``, or with one not marked complete, is unfinished;
    a corrupt one raises ``ValueError`` naming the file.
    """
    done, unfinished = [], []
    for name, workdir in programs:
        path = os.path.join(workdir, "summary.json")
        summary = read_json(path, "summary") if os.path.exists(path) else None
        if summary is None or not summary.get("complete"):
            unfinished.append(name)
        else:
            done.append((name, workdir, summary))
    return done, unfinished


def algo_ident(summary: Dict) -> Dict[str, str]:
    """{"algo": label used in file names ("bc-vae"), "algo_name": title ("BC (VAE only)")} of a summary.

    Summaries record both (``AlgoConfig.label`` / ``display_name``); older ones are named
    from their agent config's ``algo`` and ``vae_only``.
    """
    if "algo_label" in summary:
        return {"algo": summary["algo_label"], "algo_name": summary.get("algo_name", summary["algo_label"])}
    agent = summary.get("config", {}).get("agent", {})
    algo, sub = str(agent.get("algo")), bool(agent.get("vae_only", False))
    return {"algo": algo + ("-vae" if sub else ""), "algo_name": algo.upper() + (" (VAE only)" if sub else "")}


def rows_from_summary(summary: Dict, program: str = "") -> Tuple[List[Dict], List[Dict]]:
    """Tidy rows (one per run and evaluation) of one summary, and the diverged runs."""
    cfg = summary.get("config", {})
    rows, diverged = [], []
    for run in summary.get("runs", []):
        ident = {**algo_ident(summary),
                 "pruner": run["pruner"], "sparsity": float(run["sparsity"]), "dataset": cfg.get("dataset"),
                 "env": summary.get("env_id"), "seed": int(run["seed"])}
        if run.get("status") == "diverged":
            diverged.append(dict(ident, nan_step=run.get("nan_step"), program=program))
            continue
        nets = {f"sparsity_{net}": float(rep["sparsity"]) for net, rep in run.get("masks", {}).items()}
        # kernel weights the run trains, over all its networks (a narrow run: all of its own)
        kept = sum(int(rep["kept"]) for rep in run.get("masks", {}).values()) if run.get("masks") else None
        for e in run.get("evals", []):
            rows.append(dict(ident, step=int(e["step"]), returns=[float(x) for x in e["returns"]],
                             **{"return": float(e["return"])}, normalized_score=e.get("normalized_score"),
                             weights_kept=kept, train_steps_per_s=run.get("train_steps_per_s"),
                             **nets, program=program or run.get("program", "")))
    return rows, diverged


def columns_of(rows: Sequence[Dict]) -> List[str]:
    """:data:`BASE_COLUMNS`, the ``sparsity_<network>`` columns present, then ``program``."""
    nets = {k for r in rows for k in r if k.startswith("sparsity_")}
    order = [f"sparsity_{n}" for n in NETWORK_ORDER if f"sparsity_{n}" in nets]
    order += sorted(nets - set(order))
    return list(BASE_COLUMNS) + order + ["program"]


def row_sort_key(r: Dict):
    """The order of the results table: algo, dataset, pruner, sparsity, seed, step."""
    return (r["algo"], r["dataset"], r["pruner"], r["sparsity"], r["seed"], r["step"])


def tidy_table(rows: Sequence[Dict]) -> Tuple[List[Dict], List[str]]:
    """(rows sorted and with exactly the table's columns, missing ones None; the columns)."""
    rows = sorted(rows, key=row_sort_key)
    columns = columns_of(rows)
    return [{c: r.get(c) for c in columns} for r in rows], columns


def log_diverged(diverged: Sequence[Dict], log: Log) -> None:
    if diverged:
        log(f"excluded {len(diverged)} diverged run(s): " + "; ".join(
            f"{d['algo']} {d['pruner']} sparsity {d['sparsity']} seed {d['seed']} on {d['dataset']} "
            f"(non-finite loss at step {d['nan_step']})" for d in diverged))


def write_results(sweep_workdir: str, rows: Sequence[Dict], columns: Sequence[str], diverged: Sequence[Dict],
                  log: Log = print) -> Tuple[str, str]:
    """Write ``results.csv``, ``results.jsonl`` and ``diverged.json`` atomically; returns (csv, jsonl) paths.

    CSV cells: lists as JSON, floats as ``repr`` (round-trip exact), None as empty.
    """
    csv_path = os.path.join(sweep_workdir, "results.csv")
    jsonl_path = os.path.join(sweep_workdir, "results.jsonl")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r[c] is None else json.dumps(r[c]) if isinstance(r[c], list)
                    else repr(r[c]) if isinstance(r[c], float) else r[c] for c in columns])
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(jsonl_path, "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_json(os.path.join(sweep_workdir, "diverged.json"), list(diverged))
    log(f"results: {len(rows)} rows -> {csv_path}, {jsonl_path}")
    return csv_path, jsonl_path


def load_results(sweep_workdir: str) -> List[Dict]:
    """Rows of ``results.jsonl``, read strictly: a truncated or corrupt file raises
    ``ValueError`` naming it (re-run the sweep command to rewrite it from the summaries)."""
    path = os.path.join(sweep_workdir, "results.jsonl")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no results in {sweep_workdir} (results.jsonl missing; has the sweep finished?)")
    rows = []
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        raise ValueError(f"results file {path} is truncated (no newline at the end); re-run the sweep command "
                         "to rewrite it from the programs' summaries")
    for i, line in enumerate(text.splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"results file {path} is corrupt at line {i} ({e}); re-run the sweep command to "
                             "rewrite it from the programs' summaries") from None
        if not isinstance(row, dict) or not set(BASE_COLUMNS) <= set(row):
            raise ValueError(f"results file {path} is corrupt at line {i} (not a results row)")
        rows.append(row)
    return rows
