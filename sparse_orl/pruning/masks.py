"""Masks at an exact global sparsity from importance scores.

Which leaves are prunable. Without a ``prunable`` predicate (the library's own
callers) every leaf with ndim >= 2 is prunable (:func:`is_prunable`). Callers
pruning an arbitrary model pass a predicate ``prunable(path, leaf) -> bool``
over key paths (as from ``jax.tree_util.tree_flatten_with_path``), usually
:func:`default_prunable`: only leaves named ``kernel``, so embeddings, biases
and LayerNorm scales are never pruned unless asked.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional

import jax
import jax.numpy as jnp
import numpy as np


def is_prunable(leaf) -> bool:
    """Kernels (ndim >= 2) are prunable; biases and other vectors are not."""
    return np.ndim(leaf) >= 2


Prunable = Callable[[Any, Any], bool]


def _key_name(entry):
    """The name of one key-path entry (DictKey.key, GetAttrKey.name, SequenceKey.idx, or a str)."""
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return getattr(entry, attr)
    return entry


def default_prunable(path, leaf) -> bool:
    """True for leaves named ``kernel`` (last key-path entry) with ndim >= 2.

    Dense and Conv kernels are pruned; ``nn.Embed``'s ``embedding``, biases and
    LayerNorm ``scale`` are not.
    """
    return len(path) > 0 and _key_name(path[-1]) == "kernel" and np.ndim(leaf) >= 2


def prunable_flags(tree, prunable: Optional[Prunable] = None) -> List[bool]:
    """One bool per leaf of ``tree`` in ``tree_flatten`` order: is it prunable?

    ``prunable=None`` is :func:`is_prunable` (ndim >= 2) on the leaf alone.
    """
    if prunable is None:
        return [is_prunable(x) for x in jax.tree_util.tree_leaves(tree)]
    return [bool(prunable(kp, x)) for kp, x in jax.tree_util.tree_flatten_with_path(tree)[0]]


def map_prunable(fn, other, tree, *rest, prunable: Optional[Prunable] = None):
    """``tree_map`` applying ``fn`` to prunable leaves of ``tree`` and ``other`` to the rest."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    rest_leaves = [treedef.flatten_up_to(r) for r in rest]
    flags = prunable_flags(tree, prunable)
    out = [(fn if f else other)(x, *(r[i] for r in rest_leaves))
           for i, (x, f) in enumerate(zip(leaves, flags))]
    return jax.tree_util.tree_unflatten(treedef, out)


def check_sparsity(sparsity, name: str = "sparsity") -> float:
    """Return ``sparsity`` as a float, or raise ``ValueError`` if outside [0, 1)."""
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1), got {sparsity!r}") from None
    if not (0.0 <= s < 1.0) or s != s:
        raise ValueError(f"{name} must be in [0, 1), got {sparsity!r}")
    return s


def num_kept(n: int, sparsity) -> int:
    """n − round(sparsity·n): how many of ``n`` weights a mask keeps (host-side, exact)."""
    return int(n - round(check_sparsity(sparsity) * n))


def _is_concrete(x) -> bool:
    """True unless ``x`` is a jax tracer (a traced sparsity under jit / vmap)."""
    return not isinstance(x, jax.core.Tracer)


def keep_top_k(flat_scores: jax.Array, k) -> jax.Array:
    """Boolean vector keeping exactly the ``k`` highest scores.

    Ties are broken by a stable order (lower index kept first); NaN scores rank
    last. ``k`` may be traced, so this works under ``vmap`` over sparsity
    levels, where ``lax.top_k`` (static k) cannot.
    """
    s = jnp.where(jnp.isnan(flat_scores), -jnp.inf, flat_scores)
    s = jnp.where(s == 0, 0.0, s)  # -0.0 and +0.0 must tie
    order = jnp.argsort(-s, stable=True)
    ranks = jnp.zeros(s.shape, jnp.int32).at[order].set(jnp.arange(s.size, dtype=jnp.int32))
    return ranks < k


def masks_from_scores(scores, sparsity, *, prunable: Optional[Prunable] = None):
    """Mask pytree shaped like ``scores`` at exactly ``sparsity`` over the prunable leaves.

    Ranking is global over all prunable leaves of one network (ndim >= 2, or
    those selected by ``prunable(path, leaf)``); it keeps
    n − round(sparsity·n) weights with the highest scores. Other leaves get
    all-ones masks. ``sparsity`` may be a traced scalar (then the count is
    computed in float32); a concrete value outside [0, 1) raises ``ValueError``.
    Masks are float32 (1.0 keep, 0.0 pruned) so they multiply params directly.
    """
    leaves = jax.tree_util.tree_leaves(scores)
    flags = prunable_flags(scores, prunable)
    n = int(sum(np.size(x) for x, p in zip(leaves, flags) if p))
    if _is_concrete(sparsity):
        k = num_kept(n, sparsity)
    else:
        s = jnp.asarray(sparsity, jnp.float32)
        k = n - jnp.round(s * n).astype(jnp.int32)
    if n == 0:
        return jax.tree_util.tree_map(lambda x: jnp.ones(jnp.shape(x), jnp.float32), scores)
    flat = jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x, p in zip(leaves, flags) if p])
    return masks_from_flat_keep(scores, keep_top_k(flat, k), prunable=prunable)


def masks_from_flat_keep(like, keep: jax.Array, *, prunable: Optional[Prunable] = None):
    """Mask pytree shaped like ``like`` from a flat keep vector over its prunable leaves
    (in flatten order); non-prunable leaves get all-ones masks."""
    leaves, treedef = jax.tree_util.tree_flatten(like)
    flags = prunable_flags(like, prunable)
    keep = keep.astype(jnp.float32)
    out, offset = [], 0
    for x, f in zip(leaves, flags):
        if f:
            size = int(np.size(x))
            out.append(keep[offset : offset + size].reshape(np.shape(x)))
            offset += size
        else:
            out.append(jnp.ones(np.shape(x), jnp.float32))
    return jax.tree_util.tree_unflatten(treedef, out)


def ones_like_masks(params):
    """All-ones masks: the dense network through the same code path."""
    return jax.tree_util.tree_map(lambda x: jnp.ones(jnp.shape(x), jnp.float32), params)


def apply_masks(params, masks):
    """θ ⊙ m, leaf by leaf."""
    return jax.tree_util.tree_map(lambda p, m: p * m.astype(p.dtype), params, masks)
