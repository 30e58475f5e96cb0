"""What a report shows, as data: rows, layer counts and file sizes from workdirs, their aggregates,
and the names the figures and tables print.

A workdir is a sweep (``sweep.json``) or a ``launch.train`` workdir (``summary.json``).
Rows are those of :mod:`sparse_orl.results`. Importing this module needs numpy and
the standard library only: the sweep's plan (which programs a sweep holds), the
final params (storage sizes) and scipy (confidence intervals) are imported when a
function needs them.
"""
from __future__ import annotations

import collections
import math
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sparse_orl.io_utils import read_json
from sparse_orl.results import SWEEP_FILE, algo_ident, read_summaries, rows_from_summary

Log = Callable[[str], None]
MB = 1e6
PRUNER_NAMES = {"dense": "dense", "none": "dense", "narrow": "narrow dense", "snip": "SNIP", "grasp": "GraSP", "random": "random", "magnitude": "magnitude",
                "synflow": "SynFlow"}
NETWORK_NAMES = {"actor": "actor", "critic": "critic (Q1+Q2)", "vae": "VAE"}


# ---- names ---------------------------------------------------------------------------------


def pruner_name(p: str) -> str:
    return PRUNER_NAMES.get(p, p)


def pct(s: float) -> str:
    """A sparsity as a percentage: "95%", "99.5%"."""
    v = 100 * s
    return f"{v:.0f}%" if abs(v - round(v)) < 1e-9 else f"{v:g}%"


def score_label(rows: Sequence[Dict]) -> str:
    if rows and all(r["normalized_score"] is not None for r in rows):
        return "normalized score (0 = random, 100 = expert)"
    return "return (undiscounted)"


# ---- loading ----------------------------------------------------------------------------------
def _program_dirs(workdir: str, log: Log) -> Tuple[str, List[Tuple[str, str, Dict]], List[str], Dict]:
    """("sweep" | "single", [(name, path, summary)] of complete programs, unfinished names, info)."""
    if os.path.exists(os.path.join(workdir, SWEEP_FILE)):
        from sparse_orl import sweep as sweep_lib  # the plan names the sweep's programs (imports the trainer)

        sw = sweep_lib.load_sweep(workdir)
        done, unfinished = read_summaries((p.name, p.workdir) for p in sweep_lib.plan(sw))
        if unfinished:
            log(f"WARNING: {len(unfinished)} program(s) unfinished, left out of the report: {', '.join(unfinished)}")
        info = {"steps": sw.steps, "seeds": list(sw.seeds), "eval_episodes": sw.eval_episodes,
                "eval_every": sw.eval_every, "eval_max_episode_steps": sw.eval_max_episode_steps}
        return "sweep", done, unfinished, info
    path = os.path.join(workdir, "summary.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir} is neither a sweep workdir (sweep.json) nor a launch.train workdir "
                                "(summary.json)")
    summary = read_json(path, "summary")
    c = summary.get("config", {})
    info = {k: c.get(k) for k in ("steps", "seeds", "eval_episodes", "eval_every", "eval_max_episode_steps")}
    if not summary.get("complete"):
        log(f"WARNING: {workdir} is not finished; reporting the evaluations so far")
    return "single", [(os.path.basename(os.path.abspath(workdir)), workdir, summary)], [], info


def _is_dense(run: Dict) -> bool:
    """The dense run: sparsity 0 (older workdirs named it "none", or after its pruner)."""
    return float(run["sparsity"]) == 0.0 or run.get("pruner") in ("none", "dense")


def load_data(workdir: str, log: Log = print, sizes: bool = True) -> Dict:
    """Everything the figures and tables need, from summaries and final params."""
    kind, programs, unfinished, info = _program_dirs(workdir, log)
    rows, diverged, layers, size_rows = [], [], [], []
    for name, path, summary in programs:
        r, d = rows_from_summary(summary, name)
        for row in r:
            if row["sparsity"] == 0.0 or row["pruner"] == "none":  # sparsity 0 is the dense run (older
                row["pruner"] = "dense"                                # workdirs named it "none" or its pruner)
        rows += r
        diverged += d
        ident = dict(algo_ident(summary), dataset=summary["config"]["dataset"])
        for run in summary["runs"]:
            if run.get("status") == "diverged" or run["pruner"] == "narrow" or _is_dense(run):
                continue  # narrow and dense: no masks to show
            for net, rep in run.get("masks", {}).items():
                for layer, v in rep["layers"].items():
                    layers.append(dict(ident, pruner=run["pruner"], sparsity=float(run["sparsity"]),
                                       seed=run["seed"], net=net, layer=layer, kept=v["kept"], total=v["total"]))
        if sizes and summary.get("complete"):
            from sparse_orl.checkpoint import load_final
            from sparse_orl.export import size_table

            # with the narrow control the masked runs are the "main" program's (sparse_orl.experiment)
            if "programs" in summary and "main" not in summary["programs"]:
                continue
            final_dir = os.path.join(path, summary["programs"]["main"]) if "programs" in summary else path
            try:
                _, runs = load_final(final_dir)
            except (FileNotFoundError, ValueError, KeyError) as e:
                log(f"WARNING: no storage sizes for {name}: {e}")
                continue
            for run in runs:
                for net, row in size_table(run["params"], run["masks"]).items():
                    row = dict(row, actual_sparsity=row.pop("sparsity"))
                    size_rows.append(dict(ident, pruner="dense" if _is_dense(run) else run["pruner"],
                                          sparsity=float(run["sparsity"]),
                                          seed=run["seed"], net=net, **row))
    return {"kind": kind, "workdir": workdir, "rows": rows, "diverged": diverged, "layers": layers,
            "sizes": size_rows, "unfinished": unfinished, "info": info}


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
            k = (r["algo"], r["algo_name"], r["dataset"], r["pruner"], r["sparsity"], r["seed"])
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
            "unfinished": [x for d in parts for x in d["unfinished"]], "info": info}


# ---- aggregates -------------------------------------------------------------------------------
def groups(rows: Sequence[Dict]) -> List[Tuple[str, bool, str]]:
    """The (algo,  dataset) combinations of ``rows``, sorted: one figure each."""
    return sorted({(r["algo"], r["algo_name"], r["dataset"]) for r in rows})


def final_scores(rows: Sequence[Dict]) -> Dict[Tuple, Dict[int, float]]:
    """{(algo, algo_name, dataset, pruner, sparsity): {seed: score at the run's last evaluation}}."""
    last: Dict[Tuple, Tuple[int, float]] = {}
    for r in rows:
        key = (r["algo"], r["algo_name"], r["dataset"], r["pruner"], r["sparsity"], r["seed"])
        score = r["normalized_score"] if r["normalized_score"] is not None else r["return"]
        if key not in last or r["step"] > last[key][0]:
            last[key] = (r["step"], score)
    out: Dict[Tuple, Dict[int, float]] = collections.defaultdict(dict)
    for (*cfg, seed), (_, score) in last.items():
        out[tuple(cfg)][seed] = score
    return dict(out)


def mean_ci(values: Sequence[float], level: float = 0.95) -> Tuple[float, Optional[float], Optional[float]]:
    """(mean, sample std, half-width of the t confidence interval); std/CI None with 1 value."""
    x = np.asarray(values, np.float64)
    if x.size < 2:
        return float(x.mean()), None, None
    from scipy import stats

    sd = float(x.std(ddof=1))
    return float(x.mean()), sd, float(stats.t.ppf(0.5 + level / 2, x.size - 1) * sd / math.sqrt(x.size))


def nearest_level(levels: Sequence[float], wanted: float) -> Optional[float]:
    levels = sorted(set(levels))
    return min(levels, key=lambda s: (abs(s - wanted), s)) if levels else None


def size_summary(sizes: Sequence[Dict]) -> Dict[Tuple, Dict]:
    """{(algo,  dataset, net, sparsity): mean bytes per format and counts} over sparse runs."""
    acc: Dict[Tuple, List[Dict]] = collections.defaultdict(list)
    for r in sizes:
        if r["pruner"] not in ("dense", "none"):
            acc[(r["algo"], r["algo_name"], r["dataset"], r["net"], r["sparsity"])].append(r)
    out = {}
    for k, rs in acc.items():
        out[k] = {f: float(np.mean([r[f] for r in rs])) for f in ("dense", "coo", "compact", "bitmap", "gap8",
                                                                   "kept", "weights", "params")}
        out[k]["n"] = len(rs)
    return out
