"""What every report figure shares: the palette, the pyplot handle (Agg backend, chosen only when a
figure is drawn), layer ordering, and the axes' scales, ticks and limits."""
from __future__ import annotations

import math
import os
import re
from typing import Sequence

from sparse_orl.report.data import pct
import matplotlib
from matplotlib.ticker import LogLocator, FuncFormatter


def layer_key(name: str):
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


def pyplot():

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after the backend: importing this module changes no caller's backend
    from cycler import cycler

    plt.rcParams["axes.prop_cycle"] = cycler(color=list(PALETTE))
    return plt


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def sparsity_axis(ax, levels: Sequence[float]) -> None:
    """Sparsity x axis with percent ticks at the levels, limits padded around them.

    Logit scale when the levels reach past 95% over a wide range (it spreads 0.9 / 0.95 / 0.99);
    linear otherwise. Tick labels are rotated when two of them would touch.
    """
    levels = sorted(set(levels))
    if not levels:
        return
    use_logit = levels[0] > 0 and levels[-1] < 1 and len(levels) > 1 and levels[-1] > 0.95 and \
        _logit(levels[-1]) - _logit(levels[0]) > 1.5
    if use_logit:
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
    ax.set_xlabel("sparsity (share of weights removed" + ("; logit scale)" if use_logit else ")"))


def count_text(n: float) -> str:
    """10739 -> "10.7k", 1186500 -> "1.19M"."""
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def log_y(ax) -> None:
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


def log_limits(ax, values) -> None:
    """Log y limits with a labelled 1-2-5 tick below the smallest value and above the largest, and some
    room past them: no point sits on an edge of the axes."""
    vals = [float(v) for v in values if v is not None and v > 0 and math.isfinite(v)]
    if vals:
        ax.set_ylim(_step_125(min(vals), False) / 1.25, _step_125(max(vals), True) * 1.25)


def seed_text(counts, what: str = "mean over {n} seeds") -> str:
    """"1 seed, no band" when every group has one seed, else ``what`` with the seed counts ("2/3")."""
    counts = sorted({int(c) for c in counts} or {1})
    if counts == [1]:
        return "1 seed, no band"
    return what.format(n="/".join(map(str, counts)))


def step_formatter(ax, max_step: float) -> None:
    """Training steps as 0, 20k, 40k, ... (k only when the steps reach 1000: 20, 40, 60 otherwise)."""
    if max_step >= 1000:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x / 1000:g}k" if x else "0"))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x:g}"))


def save_figure(fig, out_dir: str, name: str) -> str:
    """Lay ``fig`` out, write it as ``out_dir/name`` (110 dpi, tight box), close it; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
