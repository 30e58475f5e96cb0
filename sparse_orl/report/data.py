"""What a report shows, as data: rows, layer counts and file sizes from workdirs, their aggregates,
and the names the figures and tables print.

A workdir is a sweep (``sweep.json``) or a ``launch.train`` workdir (``summary.json``).
Rows are those of :mod:`sparse_orl.report.results`; the statistics over them are in
:mod:`sparse_orl.report.stats`.
"""
from __future__ import annotations

import collections
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sparse_orl.store.atomic import read_json
from sparse_orl.report.results import SWEEP_FILE, read_summaries, rows_from_summary
from sparse_orl.store.summary import LAST_EVALS, Summary, read_summary
from sparse_orl.export import size_table
from sparse_orl.store.final import load_final

Log = Callable[[str], None]
MB = 1e6
PRUNER_NAMES = {"dense": "dense", "none": "dense", "narrow": "narrow dense", "snip": "SNIP", "grasp": "GraSP",
                "random": "random", "magnitude": "magnitude", "synflow": "SynFlow"}


# ---- names ---------------------------------------------------------------------------------
def pruner_name(p: str) -> str:
    """A method's name in figures: the label itself ("random+erk", "snip"), SNIP / GraSP / SynFlow
    capitalized as their papers write them, "narrow dense" for the control; a widened network keeps
    its " ×K" ("SynFlow ×2")."""
    p, times, width = p.partition(" ×")
    base, _, rest = p.partition("+")
    return PRUNER_NAMES.get(base, base) + (f"+{rest}" if rest else "") + (f" ×{width}" if times else "")


def pct(s: float) -> str:
    """A sparsity as a percentage: "95%", "99.5%"."""
    v = 100 * s
    return f"{v:.0f}%" if abs(v - round(v)) < 1e-9 else f"{v:g}%"


def budget_text(n, subset: str = "uniform") -> str:
    """A data budget: "all data", "10k transitions", "first 10k transitions" (``--data_subset=first``)."""
    if n is None:
        return "all data"
    return ("first " if subset == "first" else "") + (f"{n / 1000:g}k" if n % 1000 == 0 else f"{n:,}") + \
        " transitions"


def budget_key(budget: Tuple) -> Tuple:
    """Sort key of a (max_transitions, data_subset) budget: small budgets first, the whole dataset last."""
    n, subset = budget
    return (n is None, n or 0, subset)


def score_label(rows: Sequence[Dict]) -> str:
    if rows and all(r["normalized_score"] is not None for r in rows):
        return "normalized score (0 = random, 100 = expert)"
    return "return (undiscounted)"


def with_setting(row: Dict) -> Dict:
    """``row`` with what the figures group by: ``data`` (the dataset and its budget) and the pruner
    label of a widened network (``random+erk ×2``)."""
    data = row["dataset"] if row.get("max_transitions") is None else \
        f"{row['dataset']}, {budget_text(row['max_transitions'], row.get('data_subset') or 'uniform')}"
    width = row.get("width_multiplier") or 1.0
    # the narrow control is sized by the weights it matches, not by the widened widths: no "×K"
    pruner = row["pruner"] if width == 1.0 or row["pruner"] == "narrow" else f"{row['pruner']} ×{width:g}"
    return dict(row, data=data, pruner=pruner)


# ---- loading ----------------------------------------------------------------------------------
def _sweep_programs(workdir: str) -> List[Tuple[str, str]]:
    """(name, folder) of a sweep's programs: those its ``sweep.json`` lists, else every folder
    under ``programs/``."""
    d = read_json(os.path.join(workdir, SWEEP_FILE), "sweep grid file")
    names = d.get("programs") if isinstance(d, dict) else None
    if not names:
        folder = os.path.join(workdir, "programs")
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return [(n, os.path.join(workdir, "programs", n)) for n in names]


def _program_dirs(workdir: str, log: Log) -> Tuple[str, List[Tuple[str, str, Summary]], List[str], Dict]:
    """("sweep" | "single", [(name, path, summary)] of complete programs, unfinished names, info)."""
    if os.path.exists(os.path.join(workdir, SWEEP_FILE)):
        done, unfinished = read_summaries(_sweep_programs(workdir))
        if unfinished:
            log(f"WARNING: {len(unfinished)} program(s) unfinished, left out of the report: {', '.join(unfinished)}")
        grid = read_json(os.path.join(workdir, SWEEP_FILE), "sweep grid file").get("grid", {})
        info = {k: grid.get(k) for k in ("steps", "seeds", "eval_episodes", "eval_every", "eval_max_episode_steps")}
        return "sweep", done, unfinished, info
    summary = read_summary(workdir)
    if summary is None:
        raise FileNotFoundError(f"{workdir} is neither a sweep workdir (sweep.json) nor a launch.train workdir "
                                "(summary.json)")
    c = summary.config
    info = {k: c.get(k) for k in ("steps", "seeds", "eval_episodes", "eval_every", "eval_max_episode_steps")}
    if not summary.complete:
        log(f"WARNING: {workdir} is not finished; reporting the evaluations so far")
    return "single", [(os.path.basename(os.path.abspath(workdir)), workdir, summary)], [], info


def _masked_runs_dir(path: str, summary: Summary) -> Optional[str]:
    """The folder whose final params hold a summary's masked runs (with the narrow control: ``main``)."""
    if summary.programs is None:
        return path
    return os.path.join(path, summary.programs["main"]) if "main" in summary.programs else None


def load_data(workdir: str, log: Log = print, sizes: bool = True) -> Dict:
    """Everything the figures and tables need, from summaries and final params."""
    kind, programs, unfinished, info = _program_dirs(workdir, log)
    rows, diverged, layers, size_rows, networks = [], [], [], [], {}
    for name, path, summary in programs:
        networks.update(summary.network_titles())
        r, d = rows_from_summary(summary, name)
        rows += [with_setting(x) for x in r]
        diverged += [with_setting(x) for x in d]
        cfg = summary.config
        ident = with_setting({"algo": summary.algo_label, "algo_name": summary.algo_name, "dataset": cfg["dataset"],
                              "max_transitions": cfg.get("max_transitions"), "data_subset": cfg.get("data_subset"),
                              "pruner": "",
                              "width_multiplier": cfg.get("width_multiplier") or 1.0})
        for run in summary.runs:
            if not run.ok or run.pruner in ("narrow", "dense"):
                continue  # narrow and dense: no masks to show
            for net, rep in run.masks.items():
                for layer, v in rep["layers"].items():
                    layers.append(dict(ident, pruner=with_setting(dict(ident, pruner=run.pruner))["pruner"],
                                       sparsity=float(run.sparsity), seed=run.seed, net=net, layer=layer,
                                       kept=v["kept"], total=v["total"]))
        final_dir = _masked_runs_dir(path, summary)
        if sizes and summary.complete and final_dir is not None:

            try:
                _, runs = load_final(final_dir)
            except (FileNotFoundError, ValueError, KeyError) as e:
                log(f"WARNING: no storage sizes for {name}: {e}")
                continue
            for run in runs:
                dense = float(run["sparsity"]) == 0.0 or run["pruner"] in ("none", "dense")
                for net, row in size_table(run["params"], run["masks"]).items():
                    row = dict(row, actual_sparsity=row.pop("sparsity"))
                    size_rows.append(dict(ident, pruner="dense" if dense else run["pruner"],
                                          sparsity=float(run["sparsity"]), seed=run["seed"], net=net, **row))
    return {"kind": kind, "workdir": workdir, "rows": rows, "diverged": diverged, "layers": layers,
            "sizes": size_rows, "unfinished": unfinished, "info": info, "networks": networks}


def load_many(workdirs: Sequence[str], log: Log = print, sizes: bool = True) -> Dict:
    """:func:`load_data` of several workdirs (sweeps or launch.train workdirs), merged.

    Lets one report compare experiments that could not share a program (e.g. pruning
    methods with different remedy flags). The same (algo, dataset, pruner, sparsity,
    seed) in two workdirs is an error naming both, never a silent double count.
    """
    if len(workdirs) == 1:
        return load_data(workdirs[0], log, sizes)
    parts = [load_data(w, log, sizes) for w in workdirs]
    owner: Dict[Tuple, str] = {}
    for w, d in zip(workdirs, parts):
        for r in d["rows"]:
            k = (r["algo"], r["algo_name"], r["data"], r["pruner"], r["sparsity"], r["seed"])
            if owner.setdefault(k, w) != w:
                raise ValueError(f"run {k[3]} sparsity {k[4]} seed {k[5]} ({k[0]} on {k[2]}) is in both "
                                 f"{owner[k]} and {w}: report them separately")
    infos = [d["info"] for d in parts]
    def merged(k):  # one value, or "a / b"; None (e.g. no episode cap) stays None, not "None"
        vals = sorted({str(i.get(k)) for i in infos if i.get(k) is not None})
        if not vals:
            return None
        return vals[0] if len(vals) == 1 and all(i.get(k) is not None for i in infos) else " / ".join(
            vals + (["none"] if any(i.get(k) is None for i in infos) else []))

    info = {k: merged(k) for k in infos[0]}
    return {"kind": "several", "workdir": ", ".join(workdirs),
            "rows": [r for d in parts for r in d["rows"]], "diverged": [x for d in parts for x in d["diverged"]],
            "layers": [x for d in parts for x in d["layers"]], "sizes": [x for d in parts for x in d["sizes"]],
            "unfinished": [x for d in parts for x in d["unfinished"]], "info": info,
            "networks": {k: v for d in parts for k, v in d["networks"].items()}}


# ---- aggregates -------------------------------------------------------------------------------
def groups(rows: Sequence[Dict]) -> List[Tuple[str, bool, str]]:
    """The (algo, algo name, data) combinations of ``rows``, sorted: one figure each."""
    return sorted({(r["algo"], r["algo_name"], r["data"]) for r in rows})


def final_scores(rows: Sequence[Dict], last: int = LAST_EVALS) -> Dict[Tuple, Dict[int, float]]:
    """{(algo, algo_name, data, pruner, sparsity): {seed: the run's score}}: the mean of its last ``last``
    evaluations (:data:`sparse_orl.store.summary.LAST_EVALS`, the library's one score statistic)."""
    by_run: Dict[Tuple, List[Tuple[int, float]]] = collections.defaultdict(list)
    for r in rows:
        key = (r["algo"], r["algo_name"], r["data"], r["pruner"], r["sparsity"], r["seed"])
        by_run[key].append((r["step"], r["normalized_score"] if r["normalized_score"] is not None else r["return"]))
    out: Dict[Tuple, Dict[int, float]] = collections.defaultdict(dict)
    for (*cfg, seed), evals in by_run.items():
        tail = [v for _, v in sorted(evals)[-last:]]
        out[tuple(cfg)][seed] = float(np.mean(tail))
    return dict(out)


def nearest_level(levels: Sequence[float], wanted: float) -> Optional[float]:
    levels = sorted(set(levels))
    return min(levels, key=lambda s: (abs(s - wanted), s)) if levels else None


def size_summary(sizes: Sequence[Dict]) -> Dict[Tuple, Dict]:
    """{(algo,  dataset, net, sparsity): mean bytes per format and counts} over sparse runs."""
    acc: Dict[Tuple, List[Dict]] = collections.defaultdict(list)
    for r in sizes:
        if r["pruner"] not in ("dense", "none"):
            acc[(r["algo"], r["algo_name"], r["data"], r["net"], r["sparsity"])].append(r)
    out = {}
    for k, rs in acc.items():
        out[k] = {f: float(np.mean([r[f] for r in rs])) for f in ("dense", "coo", "compact", "bitmap", "gap8",
                                                                   "kept", "weights", "params")}
        out[k]["n"] = len(rs)
    return out
