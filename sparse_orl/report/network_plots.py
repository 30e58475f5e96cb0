"""The report's figures of the networks themselves: weights left per layer (``layers_*.png``, paper
Fig. 3) and stored size against sparsity (``storage_*.png``, paper Fig. 4). Each ``plot_*`` takes the
rows of :mod:`sparse_orl.report.data` and returns the files written."""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from sparse_orl.report.data import MB, Log, nearest_level, pct, pruner_name, size_summary
from sparse_orl.report.figure import layer_key, log_limits, log_y, pyplot, save_figure, sparsity_axis
from sparse_orl.text import slug


def _ordered(networks: Dict[str, str], present) -> List[str]:
    """The networks present, in the algorithms' declared order (others after, by name)."""
    present = set(present)
    return [n for n in networks if n in present] + sorted(present - set(networks))


def plot_layers(layers: Sequence[Dict], out_dir: str, networks: Dict[str, str], sparsity: float = 0.95,
                log: Log = print) -> List[str]:
    plt = pyplot()
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
            names = sorted({r["layer"] for r in rs}, key=layer_key)
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
            log_y(ax)
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
        files.append(save_figure(fig, out_dir, f"layers_{algo}_{slug(dataset)}.png"))
    return files


def plot_storage(sizes: Sequence[Dict], out_dir: str, networks: Dict[str, str]) -> List[str]:
    plt = pyplot()
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
            log_y(ax)
            log_limits(ax, [dense] + [p[1][k] / MB for p in pts for k in ("coo", "compact")])
            sparsity_axis(ax, xs)
            ax.set_title(networks.get(net, net))
            ax.grid(alpha=0.3, which="both")
        axes[0][0].set_ylabel("stored size (MB = 10⁶ bytes, log scale)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(labels), frameon=False)
        fig.suptitle(f"{name} on {dataset}: stored size of each network vs sparsity\n"
                     "(whole files, headers included; labels: dense ÷ ours)")
        files.append(save_figure(fig, out_dir, f"storage_{algo}_{slug(dataset)}.png"))
    return files
