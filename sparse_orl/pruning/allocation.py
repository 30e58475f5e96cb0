"""How a network's kept-weight budget is split across its layers.

``masks_from_scores`` ranks every kernel of a network together (global
ranking, SNIP's rule). At high sparsity a global ranking can starve or empty a
layer (layer collapse, Tanaka et al. 2020). This module keeps the pruner's
ranking *inside* each layer but decides *how many* weights each layer keeps:

* ``"global"``: one ranking over all kernels (the default, unchanged behaviour).
* ``"uniform"``: every layer at (nearly) the same density, k_l ≈ K·n_l / n.
* ``"erk"``: Erdős–Rényi-Kernel allocation (Evci et al. 2020, RigL, building on
  Mocanu et al. 2018): density_l = ε·(fan_in + fan_out)/(fan_in·fan_out), i.e.
  k_l = ε·(fan_in + fan_out), with ε chosen so that the total is K. Layers whose
  ERK density would exceed 1 are kept dense and the rest of the budget is
  redistributed over the other layers with the same proportions (RigL's
  ``get_n_zeros``/``dense_layers`` loop).

and an optional per-layer density floor (``min_layer_density``): every layer
keeps at least ceil(floor·n_l) weights (its best by the pruner's ranking), the
rest of the budget goes by the allocation rule.

Exactness with a traced sparsity. All rules are implemented as ONE exact top-K
over the whole network (K = n − round(s·n), the count ``masks_from_scores``
keeps), with a per-weight priority instead of the raw score. For ERK/uniform
the priority of the weight of within-layer rank r (0 = best score) in layer l
is the Webster / Sainte-Laguë quotient (r + ½)/w_l with w_l = fan_in + fan_out
(ERK) or n_l (uniform). Keeping the K smallest quotients gives layer l exactly
k_l = min(n_l, round(λ·w_l)) weights for the λ that makes Σ k_l = K: the
proportional allocation with RigL's cap-and-redistribute, its total exact by
construction, and working for a traced K (a stable argsort, no static top-k).
Webster apportionment is house-monotone: a smaller K never gives a layer more
weights, so the masks of decreasing sparsity levels (or of the rounds of an
iterative pruner) are nested whenever the within-layer rankings are fixed.
Floors are a first sort key (floor members first), so they hold whenever
Σ_l ceil(floor·n_l) <= K; when the floors exceed the budget, the budget is shared
across layers in proportion to their floors.
"""
from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from sparse_orl.pruning.masks import (Prunable, _is_concrete, map_prunable, masks_from_flat_keep,
                                      masks_from_scores, num_kept, prunable_flags)

ALLOCATIONS = ("global", "erk", "uniform")


def kept_count(n: int, sparsity):
    """n − round(s·n): exact int on the host for a concrete ``sparsity``, int32 when traced."""
    if _is_concrete(sparsity):
        return num_kept(n, sparsity)
    s = jnp.asarray(sparsity, jnp.float32)
    return n - jnp.round(s * n).astype(jnp.int32)


def _clean(x):
    """Scores as float32 with NaN ranked last and −0.0 tied with +0.0 (as ``keep_top_k``)."""
    s = jnp.ravel(x).astype(jnp.float32)
    s = jnp.where(jnp.isnan(s), -jnp.inf, s)
    return jnp.where(s == 0, 0.0, s)


def within_layer_rank(x) -> jax.Array:
    """0 for the highest score of a leaf, stable (lower index first on ties), NaN last."""
    s = _clean(x)
    order = jnp.argsort(-s, stable=True)
    return jnp.zeros(s.shape, jnp.int32).at[order].set(jnp.arange(s.size, dtype=jnp.int32))


def layer_weight(shape, allocation: str) -> float:
    """w_l of the proportional rule: fan_in + fan_out (ERK) or the layer size (uniform)."""
    if allocation == "erk":
        fan_in, fan_out = int(np.prod(shape[:-1])), int(shape[-1])
        return float(fan_in + fan_out)
    if allocation == "uniform":
        return float(np.prod(shape))
    raise ValueError(f"no per-layer weight for allocation {allocation!r}")


def floor_count(size: int, min_layer_density: float) -> int:
    """ceil(floor·n_l), at most n_l (a tiny epsilon absorbs float error in floor·n_l)."""
    if min_layer_density <= 0:
        return 0
    return min(size, int(math.ceil(min_layer_density * size - 1e-9)))


def _keep_smallest_lex(primary, secondary, k):
    """Boolean vector keeping the ``k`` entries smallest by (primary, secondary, index)."""
    idx = jnp.arange(primary.size, dtype=jnp.int32)
    order = jnp.lexsort((idx, secondary, primary))
    ranks = jnp.zeros(primary.shape, jnp.int32).at[order].set(idx)
    return ranks < k


def check_allocation(allocation: str, min_layer_density: float = 0.0) -> None:
    if allocation not in ALLOCATIONS:
        raise ValueError(f"--allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    if not (0.0 <= float(min_layer_density) < 1.0):  # a floor of 1 would keep every layer dense
        raise ValueError(f"--min_layer_density must be in [0, 1), got {min_layer_density!r}")


def allocate_masks(scores, sparsity=None, *, allocation: str = "global", min_layer_density: float = 0.0,
                   k=None, prunable: Optional[Prunable] = None):
    """Mask pytree shaped like ``scores`` keeping exactly K kernel weights of one network.

    K = n − round(sparsity·n) over the prunable leaves (or ``k`` if given; both
    may be traced). ``allocation`` and ``min_layer_density`` are described in
    the module docstring; ``allocation="global"`` without a floor is exactly
    :func:`masks_from_scores`. Inside each layer the highest scores are kept.
    Scores of −inf (or NaN) are kept last: iterative pruners use −inf to
    exclude weights pruned in earlier rounds. ``prunable(path, leaf)`` selects
    the ranked leaves (default: ndim >= 2); the others get all-ones masks.
    """
    check_allocation(allocation, min_layer_density)
    if (sparsity is None) == (k is None):
        raise ValueError("give exactly one of sparsity or k")
    if allocation == "global" and min_layer_density <= 0 and k is None:
        return masks_from_scores(scores, sparsity, prunable=prunable)
    leaves = jax.tree_util.tree_leaves(scores)
    flags = prunable_flags(scores, prunable)
    sizes = [int(np.size(x)) for x, p in zip(leaves, flags) if p]
    n = int(sum(sizes))
    if n == 0:
        return jax.tree_util.tree_map(lambda x: jnp.ones(jnp.shape(x), jnp.float32), scores)
    if k is None:
        k = kept_count(n, sparsity)
    primaries, secondaries = [], []
    for x, p in zip(leaves, flags):
        if not p:
            continue
        size = int(np.size(x))
        f = floor_count(size, min_layer_density)
        if allocation == "global":
            cost = -_clean(x)  # global ranking by score
            r = within_layer_rank(x) if f > 0 else None
        else:
            r = within_layer_rank(x)
            cost = (r.astype(jnp.float32) + 0.5) / layer_weight(np.shape(x), allocation)
        if f > 0:
            in_floor = r < f
            primaries.append(jnp.where(in_floor, 0, 1).astype(jnp.int32))
            secondaries.append(jnp.where(in_floor, (r.astype(jnp.float32) + 0.5) / f, cost))
        else:
            primaries.append(jnp.ones((size,), jnp.int32))
            secondaries.append(cost)
    keep = _keep_smallest_lex(jnp.concatenate(primaries), jnp.concatenate(secondaries), k)
    return masks_from_flat_keep(scores, keep, prunable=prunable)


def erk_counts(shapes, k: int) -> np.ndarray:
    """Host-side reference of the ERK counts with RigL's cap-and-redistribute loop.

    Returns the real-valued per-layer kept counts (before rounding) for a total
    of ``k``: layers whose count would exceed their size are made dense and ε is
    recomputed over the rest, until no layer overflows. Used by tests and reports.
    """
    sizes = np.array([np.prod(s) for s in shapes], np.float64)
    w = np.array([layer_weight(s, "erk") for s in shapes], np.float64)
    dense = np.zeros(len(shapes), bool)
    while True:
        budget = k - sizes[dense].sum()
        eps = budget / w[~dense].sum()
        counts = np.where(dense, sizes, eps * w)
        over = (~dense) & (counts > sizes)
        if not over.any():
            return counts
        dense |= over


def exclude_pruned(scores, masks, *, prunable: Optional[Prunable] = None):
    """Scores with −inf where ``masks`` is 0 on prunable leaves (never re-kept by a later round)."""
    return map_prunable(lambda s, m: jnp.where(m > 0, s.astype(jnp.float32), -jnp.inf),
                        lambda s, m: s, scores, masks, prunable=prunable)


def exponential_schedule(sparsity, t, rounds: int):
    """Sparsity after round ``t`` of ``rounds``: 1 − (1 − s)^(t/rounds) (SynFlow's schedule).

    The density shrinks by the same factor every round. ``t`` may be traced.
    """
    s = jnp.asarray(sparsity, jnp.float32)
    frac = jnp.asarray(t, jnp.float32) / rounds
    return 1.0 - jnp.exp(frac * jnp.log1p(-s))


def iterative_masks(score_fn, mask_fn, initial_masks, sparsity, rounds: int):
    """Prune in ``rounds`` rounds toward ``sparsity`` on the exponential schedule.

    Each round rescored: ``scores = score_fn(masks)`` (the scorer sees the
    current masked params), then ``masks = mask_fn(scores, sparsity_t, masks)``,
    which must exclude the weights pruned so far (e.g. with
    :func:`exclude_pruned`, score −inf) and return masks shaped like ``masks``. Rounds 1..rounds−1 run in a
    ``lax.fori_loop``; the last round uses ``sparsity`` itself, so the final
    count is exactly n − round(s·n) as in one-shot pruning (and ``rounds=1`` is
    one-shot pruning). ``score_fn``/``mask_fn`` work on any pytree (e.g. a dict
    of networks) with masks shaped like the scores.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")

    def one_round(masks, s_t):
        return mask_fn(score_fn(masks), s_t, masks)

    masks = initial_masks
    if rounds > 1:
        masks = jax.lax.fori_loop(
            1, rounds, lambda t, m: one_round(m, exponential_schedule(sparsity, t, rounds)), masks
        )
    return one_round(masks, sparsity)
