"""The report's figures (PNG, matplotlib with the Agg backend, imported when a figure is drawn).

One figure per (algo, dataset) for each of:

* ``curves_<algo>_<dataset>.png`` -- normalized score vs training step, one
  panel per pruner, one line per sparsity level (mean over seeds, band =
  min-max over seeds), dense as a dashed black reference (paper Figs. 1-2);
* ``final_vs_sparsity_<algo>_<dataset>.png`` -- final score vs sparsity, one
  line per pruner (mean, band = +-1 std over seeds), dense as a horizontal line;
* ``score_vs_weights_<algo>_<dataset>.png`` -- score vs kernel weights trained, one
  panel per data budget, 95% bootstrap bands.

The figures of the networks themselves (layers, storage) are in :mod:`sparse_orl.report.network_plots`.

Each ``plot_*`` takes the rows of :mod:`sparse_orl.report.data` and returns the files written.
"""
from __future__ import annotations

import collections
import math
from typing import Dict, List, Sequence

import numpy as np

from sparse_orl.report import stats
from sparse_orl.report.data import (budget_key, budget_text, final_scores, groups, pct,
                                    pruner_name, score_label)
from sparse_orl.store.summary import LAST_EVALS
from sparse_orl.text import slug
from matplotlib.transforms import IdentityTransform, ScaledTranslation
from sparse_orl.report.figure import (LEVEL_CMAP, LEVEL_CMAP_MAX, PALETTE, count_text, pyplot,
                                      save_figure, seed_text, sparsity_axis, step_formatter)


def plot_curves(rows: Sequence[Dict], out_dir: str) -> List[str]:
    plt = pyplot()
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
            step_formatter(ax, max((r["step"] for r in sub), default=0))
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
                     + seed_text(seed_counts, "line = mean over {n} seeds, band = min–max over seeds"))
        files.append(save_figure(fig, out_dir, f"curves_{algo}_{slug(dataset)}.png"))
    return files


MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def plot_final_vs_sparsity(rows: Sequence[Dict], out_dir: str) -> List[str]:
    plt = pyplot()
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
        extent = [] if not dense else [vals.mean() - (vals.std(ddof=1) if vals.size > 1 else 0),
                                       vals.mean() + (vals.std(ddof=1) if vals.size > 1 else 0)]
        methods = sorted({k[3] for k in g if k[3] != "dense"})
        n_methods = len(methods)
        for i, pruner in enumerate(methods):
            pts = sorted((k[4], np.array(list(v.values()))) for k, v in g.items() if k[3] == pruner)
            xs = np.array([p[0] for p in pts])
            mean = np.array([p[1].mean() for p in pts])
            sd = np.array([p[1].std(ddof=1) if p[1].size > 1 else 0.0 for p in pts])
            n_seeds |= {p[1].size for p in pts}
            extent += list(mean - sd) + list(mean + sd)
            # a hollow marker shape per method, and at one level a sideways shift of a few points (not of the
            # data): methods at the same score stay visible
            shift = ScaledTranslation((i - (n_methods - 1) / 2) * 8 / 72, 0, fig.dpi_scale_trans)
            (line,) = ax.plot(xs, mean, marker=MARKERS[i % len(MARKERS)], mfc="none", mew=1.8, ms=8, lw=1.8,
                              label=pruner_name(pruner), transform=ax.transData + (shift if len(xs) == 1 else
                                                                                     IdentityTransform()))
            if any(p[1].size > 1 for p in pts):
                if len(xs) > 1:
                    ax.fill_between(xs, mean - sd, mean + sd, color=line.get_color(), alpha=0.15, lw=0)
                else:  # one level: a band has no width, draw the ±1 std as a bar
                    ax.errorbar(xs, mean, yerr=sd, color=line.get_color(), capsize=4, lw=1.2, fmt="none",
                                transform=ax.transData + shift)
        if levels:
            sparsity_axis(ax, levels)
        pad = 0.06 * ((max(extent) - min(extent)) or 1.0)  # shifted artists do not autoscale: set the limits
        ax.set_ylim(min(extent) - pad, max(extent) + pad)
        ax.set_ylabel(score_label(rows) + f"\nafter {steps:,} steps")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, loc="best")
        if dense:
            n_seeds.add(len(dense[0]))
        ax.set_title(f"{name} on {dataset}: final score vs sparsity\n"
                     + seed_text(n_seeds, "mean over {n} seeds, band (bar at one level) = ±1 std"))
        files.append(save_figure(fig, out_dir, f"final_vs_sparsity_{algo}_{slug(dataset)}.png"))
    return files


def plot_score_vs_weights(rows: Sequence[Dict], out_dir: str) -> List[str]:
    """Score vs kernel weights trained (log x), one panel per data budget: a line per method (a widened
    network is its own line, "erk_random ×2"), the narrow dense control dashed black, the full dense
    network a square. Points: mean over seeds; bars and bands: 95% bootstrap intervals of the mean."""
    plt = pyplot()
    files = []
    finals, kept = final_scores(rows), {}
    for r in rows:
        if r.get("weights_kept") is not None:
            kept[(r["algo"], r["algo_name"], r["data"], r["pruner"], r["sparsity"])] = r["weights_kept"]
    budget_of = {r["data"]: (r["dataset"], (r.get("max_transitions"), r.get("data_subset") or "uniform")) for r in rows}
    for algo, name, dataset in sorted({(k[0], k[1], budget_of[k[2]][0]) for k in finals}):
        datas = sorted({k[2] for k in finals if k[:2] == (algo, name) and budget_of[k[2]][0] == dataset},
                       key=lambda d: budget_key(budget_of[d][1]))
        if all(k[3] == "dense" for k in finals if k[:2] == (algo, name) and k[2] in datas):
            continue
        fig, axes = plt.subplots(1, len(datas), figsize=(6.2 * len(datas), 4.6), squeeze=False, sharey=True)
        for ax, data in zip(axes[0], datas):
            _weights_panel(ax, {k: v for k, v in finals.items() if k[:3] == (algo, name, data)}, kept)
            ax.set_title(budget_text(*budget_of[data][1]))
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
        files.append(save_figure(fig, out_dir, f"score_vs_weights_{algo}_{slug(dataset)}.png"))
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
        ax.set_xticks(ticks, [count_text(c) for c in ticks])
        ax.minorticks_off()
        ax.set_xlim(min(counts) / 1.2, max(counts) * 1.2)
    ax.set_xlabel("kernel weights trained (all networks, log scale)")
    ax.grid(alpha=0.3, which="both")
