"""An optax optimizer that trains only the kept weights of a pruning mask.

``optax.masked`` selects whole leaves; a pruning mask is element-wise. The
wrapper below zeroes the gradients of pruned weights before the inner
optimizer (so every moment it keeps, Adam's μ and ν, momentum traces, stays
exactly 0 there) and zeroes the updates after it (so terms that do not come
from the gradient, e.g. AdamW's decoupled weight decay λθ or added noise,
cannot move a pruned weight). JaxPruner's ``wrap_optax`` leaves re-masking the
params to the caller; here the update itself is masked, so starting from
masked params ``optax.apply_updates`` keeps pruned weights at exactly 0.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax


class MaskedState(NamedTuple):
    """Inner optimizer state plus the masks (checkpointed and sharded with it)."""

    inner: Any
    masks: Any


def _mul(tree, masks):
    # astype: float32 0/1 masks and bool masks both work, for any param dtype.
    return jax.tree_util.tree_map(lambda x, m: x * m.astype(x.dtype), tree, masks)


def _check_masks(params, masks) -> None:
    p_def, m_def = jax.tree_util.tree_structure(params), jax.tree_util.tree_structure(masks)
    if p_def != m_def:
        raise ValueError(f"masks must have the structure of params: params {p_def}, masks {m_def}")
    for (kp, p), m in zip(jax.tree_util.tree_flatten_with_path(params)[0], jax.tree_util.tree_leaves(masks)):
        if jax.numpy.shape(p) != jax.numpy.shape(m):
            raise ValueError(f"mask at {jax.tree_util.keystr(kp)} has shape {jax.numpy.shape(m)}, "
                             f"params {jax.numpy.shape(p)}")


def masked(tx: optax.GradientTransformation, masks) -> optax.GradientTransformation:
    """``tx`` restricted to the weights where ``masks`` is nonzero.

    update(g, state, params): u, inner = tx.update(g ⊙ m, state.inner, params);
    returns u ⊙ m. At kept positions (m = 1) this is exactly ``tx``; at pruned
    ones the update and every gradient-driven moment of ``tx`` are 0, weight
    decay included. Params must start masked (θ ⊙ m, e.g. ``apply_masks``).

    Exactness of what is built from the params: ``p + u ⊙ m`` gives the same
    bits at kept positions as the library's ``(p + u) ⊙ m`` (u·1 = u) and 0 at
    pruned ones; Polyak/EMA targets of masked params stay exactly 0 there by
    construction, (1 − τ)·0 + τ·0 = 0.

    ``masks`` is stored in the state (:class:`MaskedState`) and read from it in
    ``update``, so it is checkpointed, sharded and vmapped with the optimizer
    state. It must have the structure and shapes of the params.
    """

    def init(params):
        _check_masks(params, masks)
        return MaskedState(tx.init(params), masks)

    def update(updates, state, params=None):
        m = state.masks
        updates, inner = tx.update(_mul(updates, m), state.inner, params)
        return _mul(updates, m), MaskedState(inner, m)

    return optax.GradientTransformation(init, update)
