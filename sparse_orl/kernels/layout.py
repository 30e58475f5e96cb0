"""The compact representation of a pruned Dense kernel, and conversions to and from dense.

A flax Dense kernel W has shape (in, out) and the layer computes y = x W (x: batch x in). With
a 0/1 mask M of the same shape, only the K = sum(M) kept weights are stored:

* ``values`` (K_max,) float32: the kept weights, ordered by output unit j, then input unit i
  (CSR of Wᵀ). This is the trainable leaf.
* :class:`SparseIndex`, fixed int32 arrays:

  - ``row_ptr`` (out+1,): entries [row_ptr[j], row_ptr[j+1]) are the kept inputs of output j;
  - ``col_idx`` (K_max,): the input unit i of each entry;
  - ``t_ptr`` (in+1,), ``t_row`` (K_max,), ``t_perm`` (K_max,): the same entries ordered by
    input unit (CSR of W), with their output unit and their position in ``values``; used by
    the input gradient dx = dy Wᵀ.

Padding: K_max ≥ K lets runs with different masks share array shapes (and be stacked and
vmapped). Entries k ≥ row_ptr[out] = K are inert: no op reads them, their weight gradient is
exactly 0, and :func:`from_dense` fills them with value 0 and index 0. The shapes (in, out)
are the index arrays' lengths minus one, so every field is an array and the whole layer is a
plain pytree.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np


class SparseIndex(NamedTuple):
    """Fixed sparsity structure of one layer (int32 arrays; see the module docstring)."""

    row_ptr: jax.Array
    col_idx: jax.Array
    t_ptr: jax.Array
    t_row: jax.Array
    t_perm: jax.Array

    @property
    def shape(self) -> tuple[int, int]:
        """(in, out) of the dense kernel this index describes."""
        return self.t_ptr.shape[-1] - 1, self.row_ptr.shape[-1] - 1

    @property
    def k_max(self) -> int:
        """Number of entries, padding included."""
        return self.col_idx.shape[-1]


class CompactKernel(NamedTuple):
    """A pruned kernel: trainable ``values`` (K_max,) and its fixed :class:`SparseIndex`."""

    values: jax.Array
    index: SparseIndex


def kept_count(mask) -> Optional[int]:
    """K = number of nonzero mask entries, or None for a traced mask."""
    try:
        return int(np.count_nonzero(np.asarray(mask)))
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def from_dense(kernel, mask, k_max: Optional[int] = None) -> CompactKernel:
    """Compact form of ``kernel * mask`` for a flax kernel and mask of shape (in, out).

    values[k] = kernel[i_k, j_k] for the kept positions (i_k, j_k) in (output, input) order;
    padding entries (k ≥ K) get value 0 and index 0. Concrete inputs are converted with NumPy
    on the host (no compilation). Traced inputs (under jit or vmap) work when ``k_max`` is
    given: the index arrays are then built with jnp ops of static size. A traced mask with more
    than ``k_max`` kept weights cannot be checked here; the kernels reject that index at run
    time. With ``k_max=None`` the mask must be concrete and K_max = K.
    """
    count = kept_count(mask)
    if k_max is None:
        if count is None:
            raise ValueError("from_dense needs k_max for a traced mask")
        k_max = count
    elif count is not None and count > k_max:
        raise ValueError(f"mask keeps {count} weights, more than k_max={k_max}")
    if np.ndim(kernel) != 2 or np.shape(kernel) != np.shape(mask):
        raise ValueError(f"kernel {np.shape(kernel)} and mask {np.shape(mask)} must be the same 2-D shape")
    host = _concrete(kernel), _concrete(mask)
    if host[0] is not None and host[1] is not None:
        return jax.tree.map(jnp.asarray, _from_dense_host(host[0], host[1] != 0, k_max))
    return _from_dense_traced(jnp.asarray(kernel, jnp.float32), jnp.asarray(mask) != 0, k_max)


def _concrete(x) -> Optional[np.ndarray]:
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _from_dense_host(kernel: np.ndarray, keep: np.ndarray, k_max: int) -> CompactKernel:
    n_in, n_out = keep.shape
    keep_t = keep.T  # (out, in): CSR by output unit
    row_ptr = np.concatenate([[0], np.cumsum(keep_t.sum(axis=1))]).astype(np.int32)
    pos = np.flatnonzero(keep_t)
    kept = len(pos)
    col_idx = np.zeros(k_max, np.int32)
    col_idx[:kept] = pos % n_in
    values = np.zeros(k_max, np.float32)
    values[:kept] = np.asarray(kernel, np.float32).T.ravel()[pos]
    t_ptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    t_in, t_out = np.divmod(np.flatnonzero(keep), n_out)
    rank = np.cumsum(keep_t, axis=1) - 1  # kept inputs of row j before input i
    t_row, t_perm = np.zeros(k_max, np.int32), np.zeros(k_max, np.int32)
    t_row[:kept] = t_out
    t_perm[:kept] = row_ptr[t_out] + rank[t_out, t_in]
    return CompactKernel(values, SparseIndex(row_ptr, col_idx, t_ptr, t_row, t_perm))


def _from_dense_traced(kernel: jax.Array, keep: jax.Array, k_max: int) -> CompactKernel:
    n_in, n_out = keep.shape
    keep_t = keep.T  # (out, in): CSR by output unit
    row_ptr = _pointers(keep_t.sum(axis=1))
    (pos,) = jnp.nonzero(keep_t.ravel(), size=k_max, fill_value=-1)
    valid = pos >= 0
    pos = jnp.where(valid, pos, 0)
    col_idx = jnp.where(valid, pos % n_in, 0).astype(jnp.int32)
    values = jnp.where(valid, kernel.T.ravel()[pos], 0.0)

    t_ptr = _pointers(keep.sum(axis=1))
    (tpos,) = jnp.nonzero(keep.ravel(), size=k_max, fill_value=-1)
    t_valid = tpos >= 0
    tpos = jnp.where(t_valid, tpos, 0)
    t_in, t_out = tpos // n_out, tpos % n_out
    # Position of (i, j) in values: start of row j plus the kept inputs of j before i.
    rank = jnp.cumsum(keep_t, axis=1, dtype=jnp.int32) - 1
    t_perm = row_ptr[t_out] + rank[t_out, t_in]
    index = SparseIndex(
        row_ptr=row_ptr,
        col_idx=col_idx,
        t_ptr=t_ptr,
        t_row=jnp.where(t_valid, t_out, 0).astype(jnp.int32),
        t_perm=jnp.where(t_valid, t_perm, 0).astype(jnp.int32),
    )
    return CompactKernel(values.astype(jnp.float32), index)


def _pointers(counts) -> jax.Array:
    return jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(counts, dtype=jnp.int32)])


def entry_rows(index: SparseIndex) -> jax.Array:
    """Output unit of every entry (K_max,); padding entries get ``out`` (one past the last)."""
    k = jnp.arange(index.k_max, dtype=jnp.int32)
    rows = jnp.searchsorted(index.row_ptr, k, side="right").astype(jnp.int32) - 1
    return jnp.where(k < index.row_ptr[-1], rows, index.shape[1])


def to_dense(values, index: SparseIndex) -> jax.Array:
    """The dense (in, out) kernel: W[i_k, j_k] = values[k] for kept entries, 0 elsewhere.

    Exact: ``to_dense(*from_dense(w, m)) == w * m``. Differentiable in ``values``: the gradient
    is the dense gradient gathered at the kept positions, and exactly 0 for padding entries
    (their scatter is dropped).
    """
    n_in, n_out = index.shape
    rows = entry_rows(index)  # padding → out of range → dropped
    dense = jnp.zeros((n_in, n_out), jnp.float32)
    return dense.at[index.col_idx, rows].set(values, mode="drop")


def mask_of(index: SparseIndex) -> jax.Array:
    """The 0/1 float32 mask (in, out) this index keeps."""
    return to_dense(jnp.ones((index.k_max,), jnp.float32), index)
