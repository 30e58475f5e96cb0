"""Sparse-aware re-scaling of the kept weights at initialization.

A unit of a dense layer with fan-in n, initialized U(±1/√n) (or any variance ∝ 1/n),
has pre-activation variance independent of n. After pruning, unit j keeps only
k_j of its n inputs, so its pre-activation variance shrinks by k_j/n: at 95%
sparsity the signal (and the gradient flowing back) drops ~4.5x per layer. Scaling
the kept incoming weights of unit j by √(n / k_j) restores the dense variance
(the per-unit sparse initialization of Evci et al. 2022, "Gradient Flow in Sparse
Neural Networks and How Lottery Tickets Win"; cf. Lee et al. 2020, "A Signal
Propagation Perspective for Pruning Neural Networks at Initialization").
Data-free, applied once after the masks are chosen: still pruning at init.
"""
from __future__ import annotations

from typing import Optional

import jax.numpy as jnp

from sparse_orl.pruning.masks import Prunable, map_prunable


def fan_in_rescale(params, masks, *, prunable: Optional[Prunable] = None):
    """``params`` with every kernel's column j (unit j, kernel shape (fan_in, units))
    multiplied by √(fan_in / k_j), k_j = kept incoming weights of unit j.

    Units with k_j = 0 are left as they are (all their weights are zero anyway).
    Biases and other non-prunable leaves (ndim < 2, or not selected by
    ``prunable(path, leaf)``) are unchanged. The result is still exactly zero
    wherever ``masks`` is zero on the prunable leaves.
    """

    def one(p, m):
        fan_in = 1
        for d in p.shape[:-1]:
            fan_in *= d
        kept = jnp.sum(m.reshape(fan_in, p.shape[-1]).astype(jnp.float32), axis=0)
        scale = jnp.sqrt(fan_in / jnp.maximum(kept, 1.0))
        return (p * scale.astype(p.dtype)) * m.astype(p.dtype)

    return map_prunable(one, lambda p, m: p, params, masks, prunable=prunable)
