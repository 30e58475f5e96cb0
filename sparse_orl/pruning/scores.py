"""Importance scores for pruning at initialization (higher = keep).

Every scorer returns a pytree shaped like ``params``. Scores of non-prunable
leaves (biases) are computed too but ignored by :func:`masks_from_scores`.
``loss_fn(params, batch) -> scalar`` must be deterministic: any noise it needs
(VAE ε, sampled latents) is carried in ``batch`` so that every pass of a scorer
sees the same loss.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from sparse_orl.pruning.masks import is_prunable

LossFn = Callable[[Any, Any], jax.Array]


def snip_scores(loss_fn: LossFn, params, batch):
    """SNIP connection sensitivity |θ ⊙ ∂L/∂θ| (Lee et al. 2019, Eq. 6).

    This is |∂L/∂c| at c = 1 for a multiplicative mask c; the paper's division
    by Σ|·| is a positive constant per network and does not change the ranking.
    """
    grads = jax.grad(loss_fn)(params, batch)
    return jax.tree_util.tree_map(lambda p, g: jnp.abs(p * g), params, grads)


def hessian_gradient_product(loss_fn: LossFn, params, batch):
    """H·g with g = ∇_w L held constant, by forward-over-reverse (jvp of grad).

    As in GraSP's reference code, g covers the prunable weights only (biases
    get a zero tangent), so Hg = ∂/∂θ (g_wᵀ ∇_w L).
    """
    grad_fn = lambda p: jax.grad(loss_fn)(p, batch)
    g = jax.lax.stop_gradient(grad_fn(params))
    tangent = jax.tree_util.tree_map(
        lambda x: x if is_prunable(x) else jnp.zeros_like(x), g
    )
    _, hg = jax.jvp(grad_fn, (params,), (tangent,))
    return hg


def grasp_scores(loss_fn: LossFn, params, batch):
    """GraSP importance θ ⊙ Hg (Wang et al. 2020, Eq. 8 with the sign flipped).

    GraSP's removal score is S(−θ) = −θ ⊙ Hg and it removes the largest;
    keeping the largest θ ⊙ Hg is the same rule. The paper's temperature T and
    its split into two halves only rescale Hg by a positive constant for the
    regression losses used here, so they are omitted.
    """
    hg = hessian_gradient_product(loss_fn, params, batch)
    return jax.tree_util.tree_map(lambda p, h: p * h, params, hg)


def magnitude_scores(params):
    """|θ|: keep the largest weights at initialization (a data-free baseline)."""
    return jax.tree_util.tree_map(jnp.abs, params)


def random_scores(key: jax.Array, params):
    """U(0, 1) per weight, independent per leaf: random pruning at the same density."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(
        treedef, [jax.random.uniform(k, x.shape, jnp.float32) for k, x in zip(keys, leaves)]
    )
