"""Sparse training at the cost of the kept weights: a compact sparse linear layer on the CPU.

A pruned flax Dense kernel W (in, out) with mask M is stored as its kept ``values`` (K_max,)
and a fixed :class:`SparseIndex` (see :mod:`.layout`); :func:`sparse_matmul` computes
y = x W with C++ XLA FFI kernels whose cost scales with the number of kept weights, and its
gradient gives the weight gradient at the kept positions only (see :mod:`.ops` for the math).

Typical use::

    compact = from_dense(kernel, mask, k_max)          # per layer, once (traceable, vmappable)
    y = sparse_matmul(x, compact.values, compact.index) + bias
    grads = jax.grad(loss)(compact.values, ...)        # (K_max,), 0 at padding entries

When the compiled library is missing (no compiler at install time) :func:`available` is False,
:func:`unavailable_reason` says why, and the ops fall back to the masked dense product.
"""
from ._library import available, best_isa, supported_isas, unavailable_reason
from .layout import CompactKernel, SparseIndex, entry_rows, from_dense, kept_count, mask_of, to_dense
from .ops import dense_matmul, reference_matmul, sparse_matmul

__all__ = [
    "CompactKernel",
    "SparseIndex",
    "available",
    "best_isa",
    "dense_matmul",
    "entry_rows",
    "from_dense",
    "kept_count",
    "mask_of",
    "reference_matmul",
    "sparse_matmul",
    "supported_isas",
    "to_dense",
    "unavailable_reason",
]
