"""What a training job tells the terminal while it trains: the progress line and chunk sizing by wall time.

Standard library and numpy only.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sparse_orl.text import fmt_time

Group = Tuple[str, float]  # (pruner label, sparsity); dense runs are ("dense", 0.0)


def group_of(pruner: str, sparsity: float) -> Group:
    return ("dense", 0.0) if pruner == "dense" else (pruner, float(sparsity))


def group_name(g: Group) -> str:
    return "dense" if g[0] == "dense" else f"{g[0]} {g[1]:g}"


def score_text(groups: Sequence[Group], scores: Sequence[Optional[float]]) -> str:
    """" | score dense 73.1, snip 0.95 2.4, random+erk 0.95 71.0 (68.2..73.9)": mean (min..max) per group.

    ``scores[i]`` belongs to ``groups[i]``; None (a diverged run) is left out.
    """
    by: Dict[Group, List[float]] = {}
    for g, s in zip(groups, scores):
        if s is not None:
            by.setdefault(g, []).append(float(s))
    if not by:
        return ""
    parts = []
    for g, v in by.items():
        txt = f"{group_name(g)} {np.mean(v):.1f}"
        if len(v) > 1:
            txt += f" ({min(v):.1f}..{max(v):.1f})"
        parts.append(txt)
    return " | score " + ", ".join(parts)


def progress_line(step: int, total: int, run_sps: float, num_runs: int, eta_s: float,
                  losses: Dict[str, float], score: str = "") -> str:
    loss_txt = " ".join(f"{k} {v:.4g}" for k, v in losses.items())
    return (f"step {step}/{total} | {run_sps:.0f} steps/s per run, {num_runs * run_sps:.0f} total | "
            f"ETA {fmt_time(eta_s, clock=True)} | {loss_txt}{score}")


class ChunkSizer:
    """Steps in the next compiled chunk: about ``target_s`` seconds of training, never past a boundary.

    The first chunk is short (it also compiles), so a line is printed soon after
    compilation; later ones follow the measured speed. Sizes are rounded down to a
    round number (at most 2 significant digits) so metric rows fall on readable steps.
    """

    def __init__(self, target_s: float = 5.0, first: int = 100):
        self.target_s, self.first = target_s, first
        self.rate: Optional[float] = None  # steps/s of the last chunk that did not compile

    def observe(self, steps: int, seconds: float, compiled: bool) -> None:
        if not compiled and seconds > 0:
            self.rate = steps / seconds

    def next(self, limit: int) -> int:
        n = self.first if self.rate is None else max(1, int(self.rate * self.target_s))
        return max(1, min(_round_down(n), limit))


def _round_down(n: int) -> int:
    if n < 10:
        return n
    scale = 10 ** (len(str(n)) - 2)
    return (n // scale) * scale
