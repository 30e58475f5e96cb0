"""Figures (PNG) and a Markdown report from a finished sweep or a single ``launch.train`` workdir.

:func:`make_report` writes into ``out_dir``:

* ``curves_<algo>_<dataset>.png`` -- normalized score vs training step, one
  panel per pruner, one line per sparsity level (mean over seeds, band =
  min-max over seeds), dense as a dashed black reference (paper Figs. 1-2);
* ``final_vs_sparsity_<algo>_<dataset>.png`` -- final score vs sparsity, one
  line per pruner (mean, band = +-1 std over seeds), dense as a horizontal line;
* ``layers_<algo>_<dataset>.png`` -- weights left per layer of each network at
  one sparsity level, mean +- std over seeds, log y (paper Fig. 3);
* ``storage_<algo>_<dataset>.png`` -- stored MB vs sparsity of each network:
  dense float32, torch COO (the paper's files), ours
  (:func:`sparse_orl.export.size_table`) (paper Fig. 4);
* ``report.md`` -- final scores per configuration (mean +- std, 95% t
  confidence interval over seeds) and Table 1 (MB per network at 95%).

MB = 10^6 bytes, as in the paper's Table 1.
"""
from __future__ import annotations

import collections
import math
import os
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sparse_orl import sweep as sweep_lib
from sparse_orl.io_utils import atomic_write_text, read_json

Log = Callable[[str], None]
MB = 1e6
PRUNER_NAMES = {"none": "dense", "snip": "SNIP", "grasp": "GraSP", "random": "random", "magnitude": "magnitude",
                "synflow": "SynFlow"}
NETWORK_NAMES = {"actor": "actor", "critic": "critic (Q1+Q2)", "vae": "VAE"}


def algo_name(algo: str, vae_only: bool) -> str:
    return {"bcq": "BCQ", "bc": "BC"}.get(algo, algo) + (" (VAE only)" if vae_only else "")


def pruner_name(p: str) -> str:
    return PRUNER_NAMES.get(p, p)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", str(text)).strip("-")[:60]


def _pct(s: float) -> str:
    v = 100 * s
    return f"{v:.0f}%" if abs(v - round(v)) < 1e-9 else f"{v:g}%"


def _layer_key(name: str):
    """Encoder, mean, log_std, decoder; l1 < l2 < l10 (natural order)."""
    last = name.split("/")[-1]
    group = {"mean": 1, "log_std": 2}.get(last, 3 if last.startswith("d") else 0)
    return ([int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name.rsplit("/", 1)[0] if "/" in name else "")],
            group, [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", last)])


# ---- data ----------------------------------------------------------------------------------
def _program_dirs(workdir: str, log: Log) -> Tuple[str, List[Tuple[str, str, Dict]], List[str], Dict]:
    """("sweep" | "single", [(name, path, summary)] of complete programs, unfinished names, info)."""
    if os.path.exists(os.path.join(workdir, sweep_lib.SWEEP_FILE)):
        sw = sweep_lib.load_sweep(workdir)
        done, unfinished = [], []
        for p in sweep_lib.plan(sw):
            path = os.path.join(p.workdir, "summary.json")
            summary = read_json(path, "summary") if os.path.exists(path) else None
            if summary is None or not summary.get("complete"):
                unfinished.append(p.name)
            else:
                done.append((p.name, p.workdir, summary))
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


def load_data(workdir: str, log: Log = print, sizes: bool = True) -> Dict:
    """Everything the figures and tables need, from summaries and final params."""
    kind, programs, unfinished, info = _program_dirs(workdir, log)
    rows, diverged, layers, size_rows = [], [], [], []
    for name, path, summary in programs:
        r, d = sweep_lib.rows_from_summary(summary, name)
        for row in r:
            if row["sparsity"] == 0.0:  # any pruner at sparsity 0 keeps every weight: the dense run
                row["pruner"] = "none"
        rows += r
        diverged += d
        agent = summary["config"]["agent"]
        ident = dict(algo=agent["algo"], vae_only=bool(agent.get("vae_only")), dataset=summary["config"]["dataset"])
        for run in summary["runs"]:
            if run.get("status") == "diverged":
                continue
            for net, rep in run.get("masks", {}).items():
                for layer, v in rep["layers"].items():
                    layers.append(dict(ident, pruner=run["pruner"], sparsity=float(run["sparsity"]),
                                       seed=run["seed"], net=net, layer=layer, kept=v["kept"], total=v["total"]))
        if sizes and summary.get("complete"):
            from sparse_orl.checkpoint import load_final
            from sparse_orl.export import size_table

            try:
                _, runs = load_final(path)
            except (FileNotFoundError, ValueError, KeyError) as e:
                log(f"WARNING: no storage sizes for {name}: {e}")
                continue
            for run in runs:
                for net, row in size_table(run["params"], run["masks"]).items():
                    row = dict(row, actual_sparsity=row.pop("sparsity"))
                    size_rows.append(dict(ident, pruner=run["pruner"], sparsity=float(run["sparsity"]),
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
            k = (r["algo"], r["vae_only"], r["dataset"], r["pruner"], r["sparsity"], r["seed"])
            if owner.setdefault(k, w) != w:
                raise ValueError(f"run {k[3]} sparsity {k[4]} seed {k[5]} ({k[0]} on {k[2]}) is in both "
                                 f"{owner[k]} and {w}: report them separately")
    infos = [d["info"] for d in parts]
    info = {k: sorted({str(i.get(k)) for i in infos}) for k in infos[0]}
    info = {k: (v[0] if len(v) == 1 else " / ".join(v)) for k, v in info.items()}
    return {"kind": "several", "workdir": ", ".join(workdirs),
            "rows": [r for d in parts for r in d["rows"]], "diverged": [x for d in parts for x in d["diverged"]],
            "layers": [x for d in parts for x in d["layers"]], "sizes": [x for d in parts for x in d["sizes"]],
            "unfinished": [x for d in parts for x in d["unfinished"]], "info": info}


def final_scores(rows: Sequence[Dict]) -> Dict[Tuple, Dict[int, float]]:
    """{(algo, vae_only, dataset, pruner, sparsity): {seed: score at the run's last evaluation}}."""
    last: Dict[Tuple, Tuple[int, float]] = {}
    for r in rows:
        key = (r["algo"], r["vae_only"], r["dataset"], r["pruner"], r["sparsity"], r["seed"])
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


def _score_label(rows: Sequence[Dict]) -> str:
    if rows and all(r["normalized_score"] is not None for r in rows):
        return "normalized score (0 = random, 100 = expert)"
    return "return (undiscounted)"


def _groups(rows: Sequence[Dict]) -> List[Tuple[str, bool, str]]:
    return sorted({(r["algo"], r["vae_only"], r["dataset"]) for r in rows})


# ---- figures ----------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _sparsity_axis(ax, levels: Sequence[float]) -> None:
    """Logit x axis (spreads 0.9 / 0.95 / 0.99) with percent ticks at the levels."""
    levels = sorted(set(levels))
    if levels and levels[0] > 0 and levels[-1] < 1:
        ax.set_xscale("logit")
        ax.set_xlim(min(levels) / 1.6, 1 - (1 - max(levels)) / 1.6)
    ax.set_xticks(levels)
    ax.set_xticklabels([_pct(s) for s in levels], rotation=45 if len(levels) > 6 else 0)
    ax.minorticks_off()
    ax.set_xlabel("sparsity (share of weights removed; logit scale)")


def plot_curves(rows: Sequence[Dict], out_dir: str) -> List[str]:
    plt = _plt()
    files = []
    for algo, vae_only, dataset in _groups(rows):
        sub = [r for r in rows if (r["algo"], r["vae_only"], r["dataset"]) == (algo, vae_only, dataset)]
        dense = [r for r in sub if r["pruner"] == "none"]
        pruners = sorted({r["pruner"] for r in sub if r["pruner"] != "none"}) or ["none"]
        levels = sorted({r["sparsity"] for r in sub if r["pruner"] != "none"})
        cmap = plt.get_cmap("viridis")
        colors = {s: cmap(0.9 * i / max(len(levels) - 1, 1)) for i, s in enumerate(levels)}
        ncol = min(len(pruners), 3)
        nrow = math.ceil(len(pruners) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.9 * nrow), squeeze=False, sharey=True)
        seeds = sorted({r["seed"] for r in sub})
        for ax, pruner in zip(axes.flat, pruners):
            series = [("dense", dense, "black", "--")] if dense else []
            if pruner != "none":
                series += [(f"sparsity {_pct(s)}", [r for r in sub if r["pruner"] == pruner and r["sparsity"] == s],
                            colors[s], "-") for s in levels]
            for label, rs, color, style in series:
                by_step = collections.defaultdict(list)
                for r in rs:
                    by_step[r["step"]].append(r["normalized_score"] if r["normalized_score"] is not None
                                              else r["return"])
                if not by_step:
                    continue
                steps = np.array(sorted(by_step))
                vals = [np.asarray(by_step[s]) for s in steps]
                ax.plot(steps, [v.mean() for v in vals], style, color=color, label=label, lw=1.6, marker=".", ms=4)
                ax.fill_between(steps, [v.min() for v in vals], [v.max() for v in vals], color=color, alpha=0.15,
                                lw=0)
            ax.set_title(pruner_name(pruner) if pruner != "none" else "dense")
            ax.set_xlabel("training step (gradient updates)")
            ax.grid(alpha=0.3)
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        for ax in axes[:, 0]:
            ax.set_ylabel(_score_label(sub))
        for ax in list(axes.flat)[len(pruners):]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        fig.suptitle(f"{algo_name(algo, vae_only)} on {dataset}: score during training\n"
                     f"line = mean over {len(seeds)} seed(s), band = min–max over seeds")
        fig.tight_layout()
        path = os.path.join(out_dir, f"curves_{algo}{'-vae' if vae_only else ''}_{_slug(dataset)}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


def plot_final_vs_sparsity(rows: Sequence[Dict], out_dir: str) -> List[str]:
    plt = _plt()
    files = []
    finals = final_scores(rows)
    for algo, vae_only, dataset in _groups(rows):
        g = {k: v for k, v in finals.items() if k[:3] == (algo, vae_only, dataset)}
        fig, ax = plt.subplots(figsize=(7, 4.4))
        levels = sorted({k[4] for k in g if k[3] != "none"})
        steps = max(r["step"] for r in rows if (r["algo"], r["vae_only"], r["dataset"]) == (algo, vae_only, dataset))
        dense = [v for k, v in g.items() if k[3] == "none"]
        if dense:
            vals = np.array(list(dense[0].values()))
            ax.axhline(vals.mean(), color="black", ls="--", lw=1.5, label=f"dense (n={vals.size})")
            if vals.size > 1:
                ax.axhspan(vals.mean() - vals.std(ddof=1), vals.mean() + vals.std(ddof=1), color="black", alpha=0.08)
        n_seeds = set()
        for pruner in sorted({k[3] for k in g if k[3] != "none"}):
            pts = sorted((k[4], np.array(list(v.values()))) for k, v in g.items() if k[3] == pruner)
            xs = np.array([p[0] for p in pts])
            mean = np.array([p[1].mean() for p in pts])
            sd = np.array([p[1].std(ddof=1) if p[1].size > 1 else 0.0 for p in pts])
            n_seeds |= {p[1].size for p in pts}
            (line,) = ax.plot(xs, mean, marker="o", lw=1.8, label=pruner_name(pruner))
            ax.fill_between(xs, mean - sd, mean + sd, color=line.get_color(), alpha=0.15, lw=0)
        if levels:
            _sparsity_axis(ax, levels)
        ax.set_ylabel(_score_label(rows) + f"\nafter {steps:,} steps")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, loc="best")
        n_txt = "/".join(str(n) for n in sorted(n_seeds)) or "1"
        ax.set_title(f"{algo_name(algo, vae_only)} on {dataset}: final score vs sparsity\n"
                     f"mean over {n_txt} seed(s), band = ±1 std")
        fig.tight_layout()
        path = os.path.join(out_dir, f"final_vs_sparsity_{algo}{'-vae' if vae_only else ''}_{_slug(dataset)}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


def nearest_level(levels: Sequence[float], wanted: float) -> Optional[float]:
    levels = sorted(set(levels))
    return min(levels, key=lambda s: (abs(s - wanted), s)) if levels else None


def plot_layers(layers: Sequence[Dict], out_dir: str, sparsity: float = 0.95, log: Log = print) -> List[str]:
    plt = _plt()
    files = []
    for algo, vae_only, dataset in sorted({(r["algo"], r["vae_only"], r["dataset"]) for r in layers}):
        sub = [r for r in layers if (r["algo"], r["vae_only"], r["dataset"]) == (algo, vae_only, dataset)
               and r["pruner"] != "none"]
        level = nearest_level([r["sparsity"] for r in sub], sparsity)
        if level is None:
            continue
        if abs(level - sparsity) > 1e-9:
            log(f"layer figure: no runs at {_pct(sparsity)} for {algo} on {dataset}; using {_pct(level)}")
        sub = [r for r in sub if r["sparsity"] == level]
        nets = [n for n in sweep_lib.NETWORK_ORDER if any(r["net"] == n for r in sub)]
        pruners = sorted({r["pruner"] for r in sub})
        fig, axes = plt.subplots(1, len(nets), figsize=(max(4.5, 1.1 * 8) * len(nets) / 1.6, 4.6), squeeze=False)
        seeds = sorted({r["seed"] for r in sub})
        for ax, net in zip(axes[0], nets):
            rs = [r for r in sub if r["net"] == net]
            names = sorted({r["layer"] for r in rs}, key=_layer_key)
            total = {r["layer"]: r["total"] for r in rs}
            x = np.arange(len(names))
            width = 0.8 / (len(pruners) + 1)
            ax.bar(x - 0.4 + width / 2, [total[n] for n in names], width, color="lightgray", edgecolor="gray",
                   label="all weights (dense)")
            for j, pruner in enumerate(pruners):
                kept = [np.array([r["kept"] for r in rs if r["layer"] == n and r["pruner"] == pruner], float)
                        for n in names]
                mean = np.array([k.mean() for k in kept])
                sd = np.array([k.std(ddof=1) if k.size > 1 else 0.0 for k in kept])
                ax.bar(x - 0.4 + width * (j + 1.5), np.maximum(mean, 0.5), width, yerr=sd, capsize=2,
                       label=pruner_name(pruner))
            ax.set_yscale("log")
            ax.set_xticks(x)
            ax.set_xticklabels(names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
            ax.set_xlabel("layer")
            ax.set_title(NETWORK_NAMES.get(net, net))
            ax.grid(axis="y", alpha=0.3, which="both")
        axes[0][0].set_ylabel("weights left (count, log scale)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(labels), frameon=False)
        fig.suptitle(f"{algo_name(algo, vae_only)} on {dataset}: weights left per layer at {_pct(level)} sparsity\n"
                     f"mean ± std over {len(seeds)} seed(s); 0 drawn at 0.5 (a collapsed layer)")
        fig.tight_layout()
        path = os.path.join(out_dir, f"layers_{algo}{'-vae' if vae_only else ''}_{_slug(dataset)}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


def size_summary(sizes: Sequence[Dict]) -> Dict[Tuple, Dict]:
    """{(algo, vae_only, dataset, net, sparsity): mean bytes per format and counts} over sparse runs."""
    acc: Dict[Tuple, List[Dict]] = collections.defaultdict(list)
    for r in sizes:
        if r["pruner"] != "none":
            acc[(r["algo"], r["vae_only"], r["dataset"], r["net"], r["sparsity"])].append(r)
    out = {}
    for k, rs in acc.items():
        out[k] = {f: float(np.mean([r[f] for r in rs])) for f in ("dense", "coo", "compact", "bitmap", "gap8",
                                                                   "kept", "weights", "params")}
        out[k]["n"] = len(rs)
    return out


def plot_storage(sizes: Sequence[Dict], out_dir: str) -> List[str]:
    plt = _plt()
    files = []
    table = size_summary(sizes)
    for algo, vae_only, dataset in sorted({k[:3] for k in table}):
        g = {k: v for k, v in table.items() if k[:3] == (algo, vae_only, dataset)}
        nets = [n for n in sweep_lib.NETWORK_ORDER if any(k[3] == n for k in g)]
        fig, axes = plt.subplots(1, len(nets), figsize=(max(7.0, 4.8 * len(nets)), 4.4), squeeze=False)
        for ax, net in zip(axes[0], nets):
            pts = sorted((k[4], v) for k, v in g.items() if k[3] == net)
            xs = [p[0] for p in pts]
            dense = pts[0][1]["dense"] / MB
            ax.axhline(dense, color="black", ls="--", label=f"dense float32 ({dense:.3g} MB)")
            ax.plot(xs, [p[1]["coo"] / MB for p in pts], marker="s", label="torch COO (paper)")
            ax.plot(xs, [p[1]["compact"] / MB for p in pts], marker="o", label="ours (compact file)")
            for s, v in pts:
                r = v["dense"] / v["compact"]
                ax.annotate(f"{r:.1f}x" if r < 10 else f"{r:.0f}x", (s, v["compact"] / MB),
                            textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8, color="C1")
            ax.set_yscale("log")
            _sparsity_axis(ax, xs)
            ax.set_title(NETWORK_NAMES.get(net, net))
            ax.grid(alpha=0.3, which="both")
            ax.legend(frameon=False, fontsize=8, loc="lower left")
        axes[0][0].set_ylabel("stored size (MB = 10⁶ bytes, log scale)")
        fig.suptitle(f"{algo_name(algo, vae_only)} on {dataset}: stored size of each network vs sparsity\n"
                     "(whole files, headers included; labels: dense ÷ ours)")
        fig.tight_layout()
        path = os.path.join(out_dir, f"storage_{algo}{'-vae' if vae_only else ''}_{_slug(dataset)}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


# ---- markdown ----------------------------------------------------------------------------------
def _num(x) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def _fmt(x: Optional[float], nd: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def score_table(rows: Sequence[Dict]) -> List[str]:
    finals = final_scores(rows)
    last_step = {}
    for r in rows:
        k = (r["algo"], r["vae_only"], r["dataset"], r["pruner"], r["sparsity"])
        last_step[k] = max(last_step.get(k, 0), r["step"])
    lines = ["| algorithm | dataset | pruner | sparsity | seeds | step | final score mean ± std | 95% CI | min | max |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    order = sorted(finals, key=lambda k: (k[0], k[1], k[2], k[3] != "none", k[3], k[4]))
    for k in order:
        vals = list(finals[k].values())
        mean, sd, hw = mean_ci(vals)
        ci = "n/a (1 seed)" if hw is None else f"[{mean - hw:.2f}, {mean + hw:.2f}]"
        sd_txt = "" if sd is None else f" ± {sd:.2f}"
        lines.append(f"| {algo_name(k[0], k[1])} | {k[2]} | {pruner_name(k[3])} | {_pct(k[4])} | {len(vals)} | "
                     f"{last_step[k]:,} | {mean:.2f}{sd_txt} | {ci} | {min(vals):.2f} | {max(vals):.2f} |")
    return lines


def storage_table(sizes: Sequence[Dict], sparsity: float = 0.95) -> Tuple[List[str], Optional[float]]:
    table = size_summary(sizes)
    level = nearest_level([k[4] for k in table], sparsity)
    if level is None:
        return ["(no sparse runs with final params)"], None
    lines = ["| algorithm | dataset | network | params | kept weights | dense MB | torch COO MB | ours MB | "
             "dense / COO | dense / ours |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k in sorted((k for k in table if k[4] == level),
                    key=lambda k: (k[0], k[1], k[2], sweep_lib.NETWORK_ORDER.index(k[3])
                                   if k[3] in sweep_lib.NETWORK_ORDER else 9)):
        v = table[k]
        lines.append(f"| {algo_name(k[0], k[1])} | {k[2]} | {NETWORK_NAMES.get(k[3], k[3])} | {int(v['params']):,} | "
                     f"{v['kept']:,.0f} | {v['dense'] / MB:.4f} | {v['coo'] / MB:.4f} | {v['compact'] / MB:.4f} | "
                     f"{v['dense'] / v['coo']:.2f}x | {v['dense'] / v['compact']:.2f}x |")
    return lines, level


def make_report(workdir, out_dir: Optional[str] = None, layer_sparsity: float = 0.95,
                table_sparsity: float = 0.95, log: Log = print) -> Dict:
    """Write the PNGs and ``report.md`` for ``workdir`` into ``out_dir`` (default ``<workdir>/report``).

    ``workdir`` may be a sequence of workdirs, merged into one report (``out_dir`` required).
    Returns {"dir", "markdown", "pngs"}.
    """
    workdirs = [workdir] if isinstance(workdir, str) else list(workdir)
    if not workdirs:
        raise ValueError("--workdir is empty")
    if len(workdirs) > 1 and not out_dir:
        raise ValueError("--out is required when --workdir lists several workdirs")
    out_dir = out_dir or os.path.join(workdirs[0], "report")
    os.makedirs(out_dir, exist_ok=True)
    data = load_many(workdirs, log)
    workdir = data["workdir"]
    rows = data["rows"]
    if not rows:
        raise ValueError(f"{workdir} has no evaluations to report (finished runs with --eval_episodes > 0)")
    pngs = plot_curves(rows, out_dir) + plot_final_vs_sparsity(rows, out_dir)
    pngs += plot_layers(data["layers"], out_dir, layer_sparsity, log)
    pngs += plot_storage(data["sizes"], out_dir)
    info = data["info"]
    md = [f"# Report: `{', '.join(os.path.abspath(w) for w in workdirs)}`", ""]
    kind = {"sweep": "Sweep", "single": "Single experiment", "several": f"{len(workdirs)} experiments"}[data["kind"]]
    md.append(f"{kind}: {_num(info.get('steps'))} steps per run, "
              f"seeds {info.get('seeds')}, evaluation every {_num(info.get('eval_every'))} steps over "
              f"{info.get('eval_episodes')} episodes"
              + (f" capped at {info['eval_max_episode_steps']} steps" if info.get("eval_max_episode_steps") else "")
              + ".")
    for w in workdirs:
        commands = os.path.join(w, "commands.log")
        if os.path.exists(commands):
            with open(commands, encoding="utf-8") as f:
                cmds = [l.rstrip("\n") for l in f if l.strip()]
            md += ["", f"Commands run on `{w}`:", "", "```"] + cmds[-5:] + ["```"]
    if data["unfinished"]:
        md += ["", f"**Unfinished programs, left out:** {', '.join(data['unfinished'])}"]
    md += ["", "## Final scores", "",
           f"Score at each run's last evaluation ({_score_label(rows)}); mean ± sample std over seeds; "
           "95% confidence interval of the mean from Student's t (n/a with one seed).", ""]
    md += score_table(rows)
    if data["diverged"]:
        md += ["", "Diverged runs (non-finite loss; excluded above):", ""]
        md += [f"- {algo_name(d['algo'], d['vae_only'])} {pruner_name(d['pruner'])} {_pct(d['sparsity'])} seed "
               f"{d['seed']} on {d['dataset']}: step {d['nan_step']}" for d in data["diverged"]]
    tab, level = storage_table(data["sizes"], table_sparsity)
    lvl = f"{_pct(level)}" if level is not None else "n/a"
    note = "" if level is None or abs(level - table_sparsity) < 1e-9 else f" (no runs at {_pct(table_sparsity)})"
    md += ["", f"## Table 1: stored size at {lvl} sparsity{note}", "",
           "MB = 10⁶ bytes. Dense: float32, 4 B per parameter. Torch COO: `torch.save` of every tensor's "
           "`to_sparse()` (the paper's format; 20 B per kept weight, 12 B per bias element, plus measured torch "
           "overheads). Ours: the whole compact file of `sparse_orl.export` (lossless float32). Mean over the "
           "sparse runs (pruners and seeds) at that level.", ""]
    md += tab
    md += ["", "## Figures", ""]
    for p in pngs:
        md += [f"### {os.path.basename(p)}", "", f"![{os.path.basename(p)}]({os.path.basename(p)})", ""]
    path = os.path.join(out_dir, "report.md")
    atomic_write_text(path, "\n".join(md) + "\n")
    log(f"report: {path} and {len(pngs)} PNG(s) in {out_dir}")
    return {"dir": out_dir, "markdown": path, "pngs": pngs}
