"""The equal-parameter dense control: a dense network with as many weights as a sparse one keeps.

For sparsity s, ``narrow_config`` scales each scored network's hidden widths by one factor
(widths round(h·f), at least 1) so that its kernels hold as many weights as the sparse
network of the full widths keeps, n − round(s·n), as close as integer widths allow
(within 1% for the paper's sizes: the 750-750 VAE at 95% becomes 153-153, 59,364 vs 59,325
weights). Which config field holds a network's widths is its ``NetworkSpec.hidden_field``.
Counts come from the algorithm's own ``init_params`` shapes
(``jax.eval_shape``), so the rule works for any registered algorithm.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Dict, Tuple

import jax
import numpy as np

from sparse_orl.algos import AlgoConfig, make_algorithm
from sparse_orl.pruning.masks import default_prunable, num_kept


@functools.lru_cache(maxsize=4096)
def kernel_counts(cfg: AlgoConfig, obs_dim: int, act_dim: int, max_action: float) -> Dict[str, int]:
    """{scored network: weights in its prunable kernels} of ``cfg`` (no arrays are built)."""
    algo = make_algorithm(cfg, obs_dim, act_dim, max_action)
    shapes = algo.scored_view(jax.eval_shape(algo.init_params, jax.random.PRNGKey(0)))
    out = {}
    for name, tree in shapes.items():
        leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
        out[name] = int(sum(np.prod(x.shape) for p, x in leaves if default_prunable(p, x)))
    return out


def _widths(base: Tuple[int, ...], f: float) -> Tuple[int, ...]:
    return tuple(max(1, int(round(h * f))) for h in base)


def narrow_config(cfg: AlgoConfig, obs_dim: int, act_dim: int, max_action: float,
                  sparsity: float) -> Tuple[AlgoConfig, Dict]:
    """(dense config with narrowed widths, record) matching the sparse network's kept weights.

    The record holds per network the widths, its weights ("kept"), the sparse network's
    kept count ("target") and the relative difference; "kept" in total; and "warning" (one line of
    text, for the job to log) when some network misses its target by more than 1%.
    """
    fields = {s.name: s.hidden_field for s in make_algorithm(cfg, obs_dim, act_dim, max_action).network_specs}
    full = kernel_counts(cfg, obs_dim, act_dim, max_action)
    out_cfg, record = cfg, {"networks": {}}
    for name, n in full.items():
        target = num_kept(n, sparsity)
        field = fields[name]
        base = tuple(getattr(cfg, field))

        def count(widths):
            c = dataclasses.replace(out_cfg, **{field: tuple(widths)})
            return kernel_counts(c, obs_dim, act_dim, max_action)[name]

        lo, hi = 0.0, 1.0  # count grows with the factor f: bisect to a width step of the largest layer
        while (hi - lo) * max(base) > 0.5:
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if count(_widths(base, mid)) < target else (lo, mid)
        # integer widths near h·f: each layer rounded down or up (one factor, rounded per layer)
        cands = set()
        for f in (lo, hi):
            cands.update(itertools.product(*[sorted({max(1, math.floor(h * f)), max(1, math.ceil(h * f))})
                                             for h in base]))
        best = min(cands, key=lambda w: (abs(count(w) - target), w))
        out_cfg = dataclasses.replace(out_cfg, **{field: best})
        kept = kernel_counts(out_cfg, obs_dim, act_dim, max_action)[name]
        record["networks"][name] = {"widths": list(best), "kept": kept, "target": target, "full": n,
                                    "relative_difference": (kept - target) / max(target, 1)}
    record["kept"] = sum(v["kept"] for v in record["networks"].values())
    record["target"] = sum(v["target"] for v in record["networks"].values())
    warning = narrow_warning(record, sparsity)
    if warning:
        record["warning"] = warning
    return out_cfg, record


MATCH_TOLERANCE = 0.01  # the control matches the sparse network's kept weights within this relative difference


def narrow_warning(record: Dict, sparsity: float) -> str:
    """One line when some network of ``record`` misses its target by more than 1% (integer widths of at
    least 1 cannot go lower: e.g. a tiny network at 99.9% keeps 0 weights, the narrowest dense one 31), or ""."""
    off = [(name, v) for name, v in record["networks"].items()
           if abs(v["kept"] - v["target"]) > MATCH_TOLERANCE * v["target"]]
    if not off:
        return ""
    parts = ", ".join(f"{name} keeps {v['kept']:,} weights against a target of {v['target']:,}"
                      + (f" ({v['relative_difference']:+.0%})" if v["target"] else "")
                      + f" at widths {v['widths']}" for name, v in off)
    return (f"the narrow control at sparsity {sparsity:g} does not match the sparse networks' kept weights "
            f"within {MATCH_TOLERANCE:.0%}: {parts}; it is not an equal-parameter control at this level")
