"""The differentiable sparse linear op y = x W for a compact W, on the FFI kernels.

With W (in, out) held as ``values`` and a :class:`~sparse_orl.kernels.layout.SparseIndex`
(entry k at input i_k, output j_k), for x of shape (batch, in) and dy = ∂L/∂y:

    y[b, j]  = Σ_{k: j_k = j} values[k] · x[b, i_k]                     (1) forward
    dx[b, i] = Σ_{k: i_k = i} values[k] · dy[b, j_k]                    (2) input gradient
    dv[k]    = Σ_b dy[b, j_k] · x[b, i_k]  for k < K,  dv[k] = 0 for k ≥ K   (3) weight gradient

(3) is the dense weight gradient xᵀ dy at the kept positions only. The kernels take and return
batch-major arrays as XLA holds them, and compute on feature-major copies (features, batch)
that they write themselves: every term of (1)-(3) is then a contiguous vector operation over
the batch. The forward pass returns x's copy and the input gradient dy's, and the weight
gradient reuses both, so each activation is transposed once per training step.

The index arrays get no gradient. Every op vmaps (leading axes on values, index and
activations; the kernels loop over them), and runs under jit, scan, lax.map and shard_map.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from . import _library
from .layout import SparseIndex, entry_rows, to_dense


def _isa_code(isa: str) -> int:
    if isa not in _library.ISA_CODES:
        raise ValueError(f"isa must be one of {sorted(_library.ISA_CODES)}, got {isa!r}")
    return _library.ISA_CODES[isa]


def padded_batch(batch: int) -> int:
    """Row length of the kernels' feature-major copies: the batch rounded up to 16, 8 or 4."""
    q = 16 if batch >= 16 else 8 if batch >= 8 else 4 if batch >= 4 else 1
    return -(-batch // q) * q


def _call(target: str, shapes, *args, isa: int):
    # expand_dims: an unbatched operand gets a size-1 leading axis that the kernel broadcasts,
    # so vmapping over runs with one shared batch copies nothing.
    if not _library.available():  # also registers the targets on first use
        raise RuntimeError(f"sparse_orl kernels unavailable: {_library.unavailable_reason()}")
    out = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
    # Inside shard_map with check_vma, ffi_call wants operands varying over the same manual axes
    # and returns unannotated results: align the operands, then mark the results varying too.
    axes = frozenset().union(*map(_varying_axes, args))
    if axes:
        args = [jax.lax.pcast(a, tuple(axes - _varying_axes(a)), to="varying") if _varying_axes(a) != axes else a
                for a in args]
    results = jax.ffi.ffi_call(target, out, vmap_method="expand_dims")(*args, isa=np.int32(isa))
    return [jax.lax.pcast(r, tuple(axes), to="varying") for r in results] if axes else results


def _varying_axes(x) -> frozenset:
    typeof = getattr(jax, "typeof", None)  # jax versions without it have no varying axes
    return getattr(getattr(typeof(x), "mat", None), "varying", frozenset()) if typeof else frozenset()


def ffi_forward(values, index: SparseIndex, x, isa: int = 0):
    """Eq. (1): (y (B, out), xt (in, B')) from x (B, in); xt is x's feature-major copy
    (B' = :func:`padded_batch`, zero padding) for :func:`ffi_weight_grad`. No gradient rule."""
    (n_in, n_out), batch = index.shape, x.shape[0]
    return _call(_library.FORWARD_TARGET, [(batch, n_out), (n_in, padded_batch(batch))],
                 values, index.row_ptr, index.col_idx, x, isa=isa)


def ffi_input_grad(values, index: SparseIndex, dy, isa: int = 0):
    """Eq. (2): (dx (B, in), dyt (out, B')) from dy (B, out); dyt as xt in :func:`ffi_forward`."""
    (n_in, n_out), batch = index.shape, dy.shape[0]
    return _call(_library.INPUT_GRAD_TARGET, [(batch, n_in), (n_out, padded_batch(batch))],
                 values, index.t_ptr, index.t_row, index.t_perm, dy, isa=isa)


def ffi_weight_grad(index: SparseIndex, dyt, xt, isa: int = 0):
    """Eq. (3): dv (K_max,) from the feature-major copies dyt, xt; exactly 0 at padding entries."""
    (dv,) = _call(_library.WEIGHT_GRAD_TARGET, [(index.k_max,)],
                  index.row_ptr, index.col_idx, dyt, xt, isa=isa)
    return dv


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _matmul(values, index, x, isa):
    return ffi_forward(values, index, x, isa)[0]


def _matmul_fwd(values, index, x, isa):
    y, xt = ffi_forward(values, index, x, isa)
    return y, (values, index, xt)


def _matmul_bwd(isa, residuals, dy):
    values, index, xt = residuals
    dx, dyt = ffi_input_grad(values, index, dy, isa)
    return ffi_weight_grad(index, dyt, xt, isa), None, dx


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _use_kernels(index: SparseIndex, batch: int, isa: str) -> bool:
    code = _isa_code(isa)
    if min(index.k_max, batch, *index.shape) == 0:
        return False  # nothing to compute: the dense path gives the zeros exactly
    if _library.available():
        if code != 0 and isa not in _library.supported_isas():
            raise ValueError(f"isa={isa!r} is not supported by this CPU (supported: {_library.supported_isas()})")
        return True
    if code != 0:
        raise RuntimeError(f"isa={isa!r} needs the compiled kernels: {_library.unavailable_reason()}")
    _library.warn_unavailable()
    return False


def sparse_matmul(x, values, index: SparseIndex, *, isa: str = "auto"):
    """y = x W for x (..., in) and the compact W (in, out): y (..., out), eqs. (1)-(3).

    The drop-in for a flax Dense kernel multiply ``x @ (kernel * mask)``: same value up to
    float summation order, gradient w.r.t. ``values`` = that product's kernel gradient at the
    kept positions, 0 at padding entries; ``x`` gets eq. (2). Falls back to
    :func:`dense_matmul` (with one warning per process) when the compiled kernels are
    unavailable. ``isa`` forces an instruction set ('generic', 'avx2', 'avx512'; default: the
    best this CPU runs).
    """
    n_in, n_out = index.shape
    lead = x.shape[:-1]
    x = jnp.asarray(x, jnp.float32)
    x2 = x.reshape(-1, n_in)
    if not _use_kernels(index, x2.shape[0], isa):
        return dense_matmul(x, values, index)
    return _matmul(values, index, x2, _isa_code(isa)).reshape(*lead, n_out)


def dense_matmul(x, values, index: SparseIndex):
    """x @ to_dense(values, index): the masked dense formulation of the same op (the fallback)."""
    return jnp.matmul(x, to_dense(values, index), precision=jax.lax.Precision.HIGHEST)


def reference_matmul(x, values, index: SparseIndex):
    """Eq. (1) as gathers and a segment sum over entries (the test oracle); autodiff gives (2), (3)."""
    n_in, n_out = index.shape
    rows = entry_rows(index)
    kept = rows < n_out
    terms = x[..., index.col_idx] * jnp.where(kept, values, 0.0)  # (..., K_max)
    y = jax.ops.segment_sum(jnp.moveaxis(terms, -1, 0), rows, num_segments=n_out)
    return jnp.moveaxis(y, 0, -1)
