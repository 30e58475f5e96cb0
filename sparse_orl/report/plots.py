"""The report's figures (PNG, matplotlib with the Agg backend, imported when a figure is drawn).

One figure per (algo, dataset) for each of:

* ``curves_<algo>_<dataset>.png`` -- normalized score vs training step, one
  panel per pruner, one line per sparsity level (mean over seeds, band =
  min-max over seeds), dense as a dashed black reference (paper Figs. 1-2);
* ``final_vs_sparsity_<algo>_<dataset>.png`` -- final score vs sparsity, one
  line per pruner (mean, band = +-1 std over seeds), dense as a horizontal line;
* ``layers_<algo>_<dataset>.png`` -- weights left per layer of each network at
  one sparsity level, mean +- std over seeds, log y (paper Fig. 3);
* ``storage_<algo>_<dataset>.png`` -- stored MB vs sparsity of each network:
  dense float32, torch COO (the paper's files), ours
  (:func:`sparse_orl.export.size_table`) (paper Fig. 4).

Each ``plot_*`` takes the rows of :mod:`sparse_orl.report.data` and returns the files written.
"""
from __future__ import annotations

import collections
import math
import os
import re
from typing import Dict, List, Sequence

import numpy as np

from sparse_orl.report import stats
from sparse_orl.report.data import (MB, Log, budget_text, final_scores, groups, nearest_level, pct,
                                    pruner_name, score_label, size_summary)
from sparse_orl.store.summary import LAST_EVALS
from sparse_orl.text import slug
import matplotlib
from matplotlib.ticker import LogLocator, FuncFormatter


def _layer_key(name: str):
    """Encoder, mean, log_std, decoder; l1 < l2 < l10 (natural order)."""
    last = name.split("/")[-1]
    group = {"mean": 1, "log_std": 2}.get(last, 3 if last.startswith("d") else 0)
    return ([int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name.rsplit("/", 1)[0] if "/" in name else "")],
            group, [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", last)])


# Dark, colour-blind-safe lines (Okabe-Ito without its pale orange-yellow and sky blue, then darker
# extras): every line and bar reads on white (contrast >= 3:1); dense is always black, dashed.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#7F3C8D", "#A6761D", "#882255", "#8C564B", "#4D4D4D")
# Sparsity levels in the curves figure: viridis from its dark end, stopped before its pale green-yellow.
LEVEL_CMAP, LEVEL_CMAP_MAX = "viridis", 0.6  # viridis(0.6) = #22a884: contrast 3:1 on white


def _plt():

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after the backend: importing this module changes no caller's backend
    from cycler import cycler

    plt.rcParams["axes.prop_cycle"] = cycler(color=list(PALETTE))
    return plt


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _sparsity_axis(ax, levels: Sequence[float]) -> None:
    """Sparsity x axis with percent ticks at the levels, limits padded around them.

    Logit scale when the levels reach past 95% over a wide range (it spreads 0.9 / 0.95 / 0.99);
    linear otherwise. Tick labels are rotated when two of them would touch.
    """
    levels = sorted(set(levels))
    if not levels:
        return
    logit = levels[0] > 0 and levels[-1] < 1 and len(levels) > 1 and levels[-1] > 0.95 and \
        _logit(levels[-1]) - _logit(levels[0]) > 1.5
    if logit:
        lo, hi = _logit(levels[0]), _logit(levels[-1])
        pad = 0.12 * (hi - lo)
        ax.set_xscale("logit")
        ax.set_xlim(1 / (1 + math.exp(-(lo - pad))), 1 / (1 + math.exp(-(hi + pad))))
        pos = [_logit(x) for x in levels]
        span = hi - lo + 2 * pad
    else:
        span_raw = (levels[-1] - levels[0]) or max(0.05, 0.1 * levels[0])
        pad = 0.12 * span_raw
        ax.set_xlim(levels[0] - pad, levels[-1] + pad)
        pos, span = levels, span_raw + 2 * pad
    gaps = [b - a for a, b in zip(pos, pos[1:])]
    crowded = bool(gaps) and min(gaps) / span < 0.07
    ax.set_xticks(levels)
    ax.set_xticklabels([pct(s) for s in levels], rotation=45 if crowded else 0, ha="right" if crowded else "center")
    ax.minorticks_off()
    ax.set_xlabel("sparsity (share of weights removed" + ("; logit scale)" if logit else ")"))


def _count(n: float) -> str:
    """10739 -> "10.7k", 1186500 -> "1.19M"."""
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def _log_y(ax) -> None:
    """A log y axis with labelled ticks at 1, 2, 5 x 10^k: readable even inside one decade."""

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda _v, _p: ""))


def _step_125(v: float, up: bool) -> float:
    """The 1, 2, 5 x 10^k value at or below ``v`` (at or above with ``up``)."""
    e = math.floor(math.log10(v))
    steps = [m * 10.0 ** k for k in (e - 1, e, e + 1) for m in (1, 2, 5)]
    return min(x for x in steps if x >= v * (1 - 1e-9)) if up else max(x for x in steps if x <= v * (1 + 1e-9))


def _log_limits(ax, values) -> None:
    """Log y limits with a labelled 1-2-5 tick below the smallest value and above the largest, and some
    room past them: no point sits on an edge of the axes."""
    vals = [float(v) for v in values if v is not None and v > 0 and math.isfinite(v)]
    if vals:
        ax.set_ylim(_step_125(min(vals), False) / 1.25, _step_125(max(vals), True) * 1.25)


def _seed_text(counts, what: str = "mean over {n} seeds") -> str:
    """"1 seed, no band" when every group has one seed, else ``what`` with the seed counts ("2/3")."""
    counts = sorted({int(c) for c in counts} or {1})
    if counts == [1]:
        return "1 seed, no band"
    return what.format(n="/".join(map(str, counts)))


def _step_formatter(ax, max_step: float) -> None:
    """Training steps as 0, 20k, 40k, ... (k only when the steps reach 1000: 20, 40, 60 otherwise)."""
    if max_step >= 1000:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x / 1000:g}k" if x else "0"))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x:g}"))


def plot_curves(rows: Sequence[Dict], out_dir: str) -> List[str]:
    plt = _plt()
    files = []
    for algo, name, dataset in groups(rows):
        sub = [r for r in rows if (r["algo"], r["algo_name"], r["data"]) == (algo, name, dataset)]
        dense = [r for r in sub if r["pruner"] == "dense"]
        pruners = sorted({r["pruner"] for r in sub if r["pruner"] != "dense"}) or ["dense"]
        levels = sorted({r["sparsity"] for r in sub if r["pruner"] != "dense"})
        cmap = plt.get_cmap(LEVEL_CMAP)
        colors = {s: cmap(LEVEL_CMAP_MAX * i / max(len(levels) - 1, 1)) for i, s in enumerate(levels)}
        ncol = min(len(pruners), 3)
        nrow = math.ceil(len(pruners) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.9 * nrow), squeeze=False, sharey=True)
        per_series = collections.defaultdict(set)  # seeds of each (pruner, sparsity) line
        for r in sub:
            per_series[(r["pruner"], r["sparsity"])].add(r["seed"])
        for ax, pruner in zip(axes.flat, pruners):
            series = [("dense", dense, "black", "--")] if dense else []
            if pruner != "dense":
                series += [(f"sparsity {pct(s)}", [r for r in sub if r["pruner"] == pruner and r["sparsity"] == s],
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
                if max(v.size for v in vals) > 1:
                    ax.fill_between(steps, [v.min() for v in vals], [v.max() for v in vals], color=color,
                                    alpha=0.15, lw=0)
            ax.set_title(pruner_name(pruner) if pruner != "dense" else "dense")
            ax.set_xlabel("training step (gradient updates)")
            ax.grid(alpha=0.3)
            _step_formatter(ax, max((r["step"] for r in sub), default=0))
        for ax in axes[:, 0]:
            ax.set_ylabel(score_label(sub))
        for ax in list(axes.flat)[len(pruners):]:
            ax.set_visible(False)
        # every level in the legend, not only the first panel's (a pruner may have run at one level only)
        legend = {}
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(lab, h)
        order = (["dense"] if "dense" in legend else []) + [f"sparsity {pct(s)}" for s in levels
                                                           if f"sparsity {pct(s)}" in legend]
        fig.legend([legend[k] for k in order], order, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        seed_counts = [len(v) for v in per_series.values()]
        fig.suptitle(f"{name} on {dataset}: score during training\n"
                     + _seed_text(seed_counts, "line = mean over {n} seeds, band = min–max over seeds"))
        fig.tight_layout()
        path = os.path.join(out_dir, f"curves_{algo}_{slug(dataset)}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


def plot_final_vs_sparsity(rows: Sequence[Dict], out_dir: str) -> List[str]:
    plt = _plt()
    files = []
    finals = final_scores(rows)
    for algo, name, dataset in groups(rows):
        g = {k: v for k, v in finals.items() if k[:3] == (algo, name, dataset)}
        levels = sorted({k[4] for k in g if k[3] != "dense"})
        if not levels:  # dense only: nothing to draw against sparsity
            continue
        fig, ax = plt.subplots(figsize=(7, 4.4))
        steps = max(r["step"] for r in rows if (r["algo"], r["algo_name"], r["data"]) == (algo, name, dataset))
        dense = [v for k, v in g.items() if k[3] == "dense"]
        if dense:
            vals = np.array(list(dense[0].values()))
            ax.axhline(vals.mean(), color="black", ls="--", lw=1.5, label=f"dense (n={vals.size})")
            if vals.size > 1:
                ax.axhspan(vals.mean() - vals.std(ddof=1), vals.mean() + vals.std(ddof=1), color="black", alpha=0.08)
        n_seeds = set()
        for pruner in sorted({k[3] for k in g if k[3] != "dense"}):
            pts = sorted((k[4], np.array(list(v.values()))) for k, v in g.items() if k[3] == pruner)
            xs = np.array([p[0] for p in pts])
            mean = np.array([p[1].mean() for p in pts])
            sd = np.array([p[1].std(ddof=1) if p[1].size > 1 else 0.0 for p in pts])
            n_seeds |= {p[1].size for p in pts}
            (line,) = ax.plot(xs, mean, marker="o", lw=1.8, label=pruner_name(pruner))
            if any(p[1].size > 1 for p in pts):
                ax.fill_between(xs, mean - sd, mean + sd, color=line.get_color(), alpha=0.15, lw=0)
        if levels:
            _sparsity_axis(ax, levels)
        ax.set_ylabel(score_label(rows) + f"\nafter {steps:,} steps")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, loc="best")
        if dense:
            n_seeds.add(len(dense[0]))
        ax.set_title(f"{name} on {dataset}: final score vs sparsity\n"
                     + _seed_text(n_seeds, "mean over {n} seeds, band = ±1 std"))
        fig.tight_layout()
        path = os.path.join(out_dir, f"final_vs_sparsity_{algo}_{slug(dataset)}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


def _ordered(networks: Dict[str, str], present) -> List[str]:
    """The networks present, in the algorithms' declared order (others after, by name)."""
    present = set(present)
    return [n for n in networks if n in present] + sorted(present - set(networks))


def plot_layers(layers: Sequence[Dict], out_dir: str, networks: Dict[str, str], sparsity: float = 0.95,
                log: Log = print) -> List[str]:
    plt = _plt()
    files = []
    for algo, name, dataset in sorted({(r["algo"], r["algo_name"], r["data"]) for r in layers}):
        sub = [r for r in layers if (r["algo"], r["algo_name"], r["data"]) == (algo, name, dataset)
               and r["pruner"] != "dense"]
        level = nearest_level([r["sparsity"] for r in sub], sparsity)
        if level is None:
            continue
        if abs(level - sparsity) > 1e-9:
            log(f"layer figure: no runs at {pct(sparsity)} for {algo} on {dataset}; using {pct(level)}")
        sub = [r for r in sub if r["sparsity"] == level]
        nets = _ordered(networks, (r["net"] for r in sub))
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
                multi = any(k.size > 1 for k in kept)
                bars = ax.bar(x - 0.4 + width * (j + 1.5), np.maximum(mean, 0.5), width, yerr=sd if multi else None,
                              capsize=2, label=pruner_name(pruner))
                for bar, m in zip(bars, mean):
                    if m == 0:  # a collapsed layer: hatched, labelled 0
                        bar.set_hatch("///")
                        bar.set_edgecolor("black")
                        ax.annotate("0", (bar.get_x() + bar.get_width() / 2, 0.5), textcoords="offset points",
                                    xytext=(0, 2), ha="center", va="bottom", fontsize=7)
            _log_y(ax)
            ax.set_xticks(x)
            ax.set_xticklabels(names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
            ax.set_xlabel("layer")
            ax.set_title(networks.get(net, net))
            ax.grid(axis="y", alpha=0.3, which="both")
            ax.set_axisbelow(True)  # grid lines behind the bars, not across them
        axes[0][0].set_ylabel("weights left (count, log scale)")
        from matplotlib.patches import Patch  # plain patches: a pruner's first bar may be a hatched 0

        handles, labels = axes[0][0].get_legend_handles_labels()
        handles = [h if lab == "all weights (dense)" else Patch(color=h.patches[0].get_facecolor() if hasattr(h, "patches")
                                                                 else h.get_facecolor(), label=lab)
                   for h, lab in zip(handles, labels)]
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(labels), frameon=False)
        seed_txt = ("1 seed, no error bar" if len(seeds) == 1 else f"mean ± std over {len(seeds)} seeds")
        fig.suptitle(f"{name} on {dataset}: weights left per layer at {pct(level)} sparsity\n"
                     f"{seed_txt}; 0 drawn hatched at 0.5 (a collapsed layer)")
        fig.tight_layout()
        path = os.path.join(out_dir, f"layers_{algo}_{slug(dataset)}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


def plot_storage(sizes: Sequence[Dict], out_dir: str, networks: Dict[str, str]) -> List[str]:
    plt = _plt()
    files = []
    table = size_summary(sizes)
    for algo, name, dataset in sorted({k[:3] for k in table}):
        g = {k: v for k, v in table.items() if k[:3] == (algo, name, dataset)}
        nets = _ordered(networks, (k[3] for k in g))
        fig, axes = plt.subplots(1, len(nets), figsize=(max(7.0, 4.8 * len(nets)), 4.4), squeeze=False)
        for ax, net in zip(axes[0], nets):
            pts = sorted((k[4], v) for k, v in g.items() if k[3] == net)
            xs = [p[0] for p in pts]
            dense = pts[0][1]["dense"] / MB
            ax.axhline(dense, color="black", ls="--", label="dense float32")
            ax.annotate(f"dense {dense:.3g} MB", (1.0, dense), xycoords=("axes fraction", "data"),
                        textcoords="offset points", xytext=(-3, 3), ha="right", va="bottom", fontsize=8)
            ax.plot(xs, [p[1]["coo"] / MB for p in pts], marker="s", label="torch COO (paper)")
            ax.plot(xs, [p[1]["compact"] / MB for p in pts], marker="o", label="ours (compact file)")
            for s, v in pts:
                r = v["dense"] / v["compact"]
                ax.annotate(f"{r:.1f}x" if r < 10 else f"{r:.0f}x", (s, v["compact"] / MB),
                            textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8, color="C1")
            _log_y(ax)
            _log_limits(ax, [dense] + [p[1][k] / MB for p in pts for k in ("coo", "compact")])
            _sparsity_axis(ax, xs)
            ax.set_title(networks.get(net, net))
            ax.grid(alpha=0.3, which="both")
        axes[0][0].set_ylabel("stored size (MB = 10⁶ bytes, log scale)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(labels), frameon=False)
        fig.suptitle(f"{name} on {dataset}: stored size of each network vs sparsity\n"
                     "(whole files, headers included; labels: dense ÷ ours)")
        fig.tight_layout()
        path = os.path.join(out_dir, f"storage_{algo}_{slug(dataset)}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


def plot_score_vs_weights(rows: Sequence[Dict], out_dir: str) -> List[str]:
    """Score vs kernel weights trained (log x), one panel per data budget: a line per method (a widened
    network is its own line, "erk_random ×2"), the narrow dense control dashed black, the full dense
    network a square. Points: mean over seeds; bars and bands: 95% bootstrap intervals of the mean."""
    plt = _plt()
    files = []
    finals, kept = final_scores(rows), {}
    for r in rows:
        if r.get("weights_kept") is not None:
            kept[(r["algo"], r["algo_name"], r["data"], r["pruner"], r["sparsity"])] = r["weights_kept"]
    budget_of = {r["data"]: (r["dataset"], r.get("max_transitions")) for r in rows}
    for algo, name, dataset in sorted({(k[0], k[1], budget_of[k[2]][0]) for k in finals}):
        datas = sorted({k[2] for k in finals if k[:2] == (algo, name) and budget_of[k[2]][0] == dataset},
                       key=lambda d: (budget_of[d][1] is None, budget_of[d][1] or 0))
        if all(k[3] == "dense" for k in finals if k[:2] == (algo, name) and k[2] in datas):
            continue
        fig, axes = plt.subplots(1, len(datas), figsize=(6.2 * len(datas), 4.6), squeeze=False, sharey=True)
        for ax, data in zip(axes[0], datas):
            _weights_panel(ax, {k: v for k, v in finals.items() if k[:3] == (algo, name, data)}, kept)
            ax.set_title(budget_text(budget_of[data][1]))
        axes[0][0].set_ylabel(score_label(rows) + f"\nmean of the last {LAST_EVALS} evaluations")
        handles = {}
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        fig.legend(list(handles.values()), list(handles), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncol=min(len(handles), 4), frameon=False)
        steps = max(r["step"] for r in rows if (r["algo"], r["dataset"]) == (algo, dataset))
        counts = [len(v) for k, v in finals.items() if k[:2] == (algo, name) and k[2] in datas]
        band = ("points = 1 seed each, no interval" if max(counts, default=1) <= 1
                else "points = mean over seeds, bars and bands = 95% bootstrap interval of the mean")
        fig.suptitle(f"{name} on {dataset}: score vs kernel weights trained, per data budget, after {steps:,} steps\n"
                     + band)
        fig.tight_layout()
        path = os.path.join(out_dir, f"score_vs_weights_{algo}_{slug(dataset)}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append(path)
    return files


def _weights_panel(ax, finals: Dict, kept: Dict) -> None:
    """One data budget of :func:`plot_score_vs_weights`."""
    colors, markers = iter(PALETTE), iter("os^vP*Xh<>")
    methods = sorted({k[3] for k in finals}, key=lambda p: (p == "dense", p == "narrow", p))
    counts = [kept[k] for k in finals if k in kept]
    for j, method in enumerate(methods):
        ks = sorted((k for k in finals if k[3] == method and k in kept), key=lambda k: kept[k])
        if not ks:
            continue
        # methods at one weight count are offset by a few percent so that none hides another
        shift = 1.0 + 0.035 * (j - (len(methods) - 1) / 2) if method != "dense" else 1.0
        xs = np.array([kept[k] for k in ks]) * shift
        cells = [stats.cell(list(finals[k].values())) for k in ks]
        mean = np.array([c.mean for c in cells])
        low = np.array([c.low if c.low is not None else c.mean for c in cells])
        high = np.array([c.high if c.high is not None else c.mean for c in cells])
        n = "/".join(str(x) for x in sorted({c.n for c in cells}))
        if method == "dense":
            ax.errorbar(xs, mean, yerr=[mean - low, high - mean], fmt="s", color="black", ms=8, capsize=3,
                        label=f"dense, full size (n={n})")
            continue
        style = (dict(color="black", ls="--", marker="D") if method == "narrow"
                 else dict(color=next(colors), marker=next(markers)))
        label = ("narrow dense, same weights" if method == "narrow" else pruner_name(method)) + f" (n={n})"
        (line,) = ax.plot(xs, mean, lw=1.8, ms=7, label=label, **style)
        ax.errorbar(xs, mean, yerr=[mean - low, high - mean], fmt="none", ecolor=line.get_color(), capsize=3, lw=1)
        if len(xs) > 1:
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.12, lw=0)
    ax.set_xscale("log")
    if counts and max(counts) / min(counts) < 10:  # within a decade: label the counts themselves
        ticks = sorted(set(counts))
        ticks = [c for i, c in enumerate(ticks) if i == 0 or c / ticks[i - 1] > 1.15]
        ax.set_xticks(ticks, [_count(c) for c in ticks])
        ax.minorticks_off()
        ax.set_xlim(min(counts) / 1.2, max(counts) * 1.2)
    ax.set_xlabel("kernel weights trained (all networks, log scale)")
    ax.grid(alpha=0.3, which="both")
