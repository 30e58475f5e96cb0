"""Standalone policy for deployment: load a compact file, act(obs). numpy only.

This module imports numpy and the standard library only (jax only when
``backend="jax"`` is asked for; scipy, optional, when it is installed), never
flax or the rest of ``sparse_orl``, so
it can be copied to a device together with a file written by
``sparse_orl.export.export_run``. That is why it is one file, longer than a
module here usually is: a device gets this file and nothing else. It holds the one decoder of the compact format
(documented in ``sparse_orl/codec.py``, format version 1), which ``sparse_orl.export.codec``
imports.

Acting rules are not written here: each algorithm describes its ``act`` as data
(``Algorithm.acting_program``, e.g. BCQ: argmax_j Q1(s, ξ(s, G(s, z_j))) over
num_act_samples clipped latents), ``export_run`` stores that program in the file, and
:class:`Policy` interprets it. A test checks program == ``Algorithm.act`` per algorithm.

Observations are normalized (obs - mean) / std first when the config says
``normalize_obs``. The math is float32; a run trained with
``compute_dtype="bfloat16"`` matmuls acts slightly differently here.

``sparse=False`` (the jax backend's default) is the plain dense reference: dense matmuls on
the uncompacted kernels (zeros included), numpy or jax.

``sparse=True`` (the numpy backend's default) is the best sparse-aware path; results agree
with the dense path to float32 rounding:

1. Dead-unit compaction at load (:func:`compact_mlp`, exact up to rounding):
   hidden units with no kept outgoing weight are dropped, units with no kept
   incoming weight are folded into the next layer's bias as the constant
   ``relu(b_u)``, to a fixed point; unused input features are skipped. At 95%
   sparsity this removes hundreds of the 750 / 400 / 300 hidden units.
2. Per compacted layer, a kernel: ``dense`` BLAS on the compacted matrix,
   ``csr`` (scipy CSR of the transposed kernel; scipy is optional) or
   ``gather`` (numpy gathers + ``np.add.reduceat``). ``kernel="auto"`` (the
   default) picks from the layer's own density first: a layer with no pruned
   weight, or at least ``DENSE_FROM`` (50%) of them kept, is ``dense`` at once (a
   dense or narrow file loads without any timing); the other layers time the
   kernels at load, separately for small inputs (the rows one observation
   produces: 1 for BC, ``num_act_samples`` for BCQ; used up to ``SMALL_ROWS``
   rows) and for a 256-row batch, and keep the fastest of each (``gather`` only
   where its temporaries stay small). ``kernel="dense" | "csr" | "gather"`` forces
   one. :meth:`Policy.kernel_summary` shows per layer the kernel used and why.

Without scipy there is no ``csr`` kernel and much of the sparse speed-up goes: the
numpy-only path has dense BLAS on the compacted matrices and ``gather``, which rarely
beats it (measured, HalfCheetah BCQ at 95%, 1 BLAS thread: 1.5x slower at batch 1 and
2x at batch 256 than with scipy, still faster than ``sparse=False``); install scipy on
the device for the fast path (``HAVE_SCIPY`` says whether it loaded).

Every file is checked when it is LOADED: its config (``obs_dim``, ``act_dim``,
``max_action``), its acting program (known ops, every value read produced by an
earlier op, widths that chain) and the layers the program reads; a bad file is one
``ValueError`` line naming the file and what is wrong, never a ``KeyError`` at the
first ``act()``.

Threads: nothing here changes BLAS threading. Batch-1 latency is best with a
single BLAS thread (``OPENBLAS_NUM_THREADS=1`` / ``MKL_NUM_THREADS=1`` /
``OMP_NUM_THREADS=1`` set before numpy is imported, or ``threadpoolctl``
around the caller's loop): the matrices are too small for threads to pay for
their wake-up. Large batches (256+) can use more threads for the dense layers.
"""
from __future__ import annotations

import json
import struct
import time
import zlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

# ---- file decoding: the one decoder of the compact format (sparse_orl.export.codec imports it) -----------
MAGIC = b"\x89SOC"
FORMAT_VERSION = 1
PREAMBLE = struct.Struct("<4sBII")  # magic, version, header length, header crc32
_ITEMSIZE = {"f32": 4, "f16": 2, "bf16": 2}


def _positions(codec: str, buf: bytes, k: int, size: int) -> np.ndarray:
    """The kept flat positions of one leaf from its index stream (codecs: ``sparse_orl.export.codec``)."""
    if codec.endswith("z"):
        buf, codec = zlib.decompress(buf), codec[:-1]
    if codec == "full":
        if buf or k != size:
            raise ValueError(f"'full' tensor with {k} of {size} kept")
        return np.arange(size, dtype=np.int64)
    if codec == "bmp":
        if len(buf) != (size + 7) // 8:
            raise ValueError(f"bitmap has {len(buf)} bytes for {size} positions")
        pos = np.flatnonzero(np.unpackbits(np.frombuffer(buf, np.uint8), count=size, bitorder="little"))
        if len(pos) != k:
            raise ValueError(f"bitmap holds {len(pos)} positions, header says {k}")
        return pos
    if codec == "g8":
        b = np.frombuffer(buf, np.uint8)
        ends = np.flatnonzero(b != 255)
        if len(ends) != k or (len(b) and b[-1] == 255):
            raise ValueError(f"gap stream holds {len(ends)} positions, header says {k}")
        pos = np.cumsum(b, dtype=np.int64)[ends] + np.arange(k, dtype=np.int64)
        if k and pos[-1] >= size:
            raise ValueError(f"gap stream points past the tensor ({pos[-1]} >= {size})")
        return pos
    raise ValueError(f"unknown index codec {codec!r}")


def _values(codec: str, buf: bytes, k: int) -> np.ndarray:
    """The ``k`` kept values of one leaf, as float32, from its value stream."""
    split_top = codec.endswith("z")
    vcode = codec[:-1] if split_top else codec
    if vcode not in _ITEMSIZE:
        raise ValueError(f"unknown value codec {codec!r}")
    isz = _ITEMSIZE[vcode]
    if split_top:
        low = (isz - 1) * k
        if len(buf) < low:
            raise ValueError(f"value stream too short ({len(buf)} B for {k} values)")
        top = np.frombuffer(zlib.decompress(buf[: len(buf) - low]), np.uint8)
        if len(top) != k:
            raise ValueError(f"value stream holds {len(top)} values, header says {k}")
        planes = np.empty((k, isz), np.uint8)
        planes[:, -1] = top
        planes[:, :-1] = np.frombuffer(buf[len(buf) - low:], np.uint8).reshape(k, isz - 1)
        raw = planes.tobytes()
    else:
        if len(buf) != isz * k:
            raise ValueError(f"value stream has {len(buf)} B for {k} values of {isz} B")
        raw = buf
    if vcode == "f32":
        return np.frombuffer(raw, "<f4").astype(np.float32)
    if vcode == "f16":
        return np.frombuffer(raw, "<f2").astype(np.float32)
    return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)


def _decode(data: bytes) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], Dict[str, Any]]:
    if len(data) < PREAMBLE.size:
        raise ValueError(f"{len(data)} bytes, shorter than the {PREAMBLE.size}-byte preamble")
    magic, version, hlen, hcrc = PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"bad magic {magic!r} (not a sparse_orl compact file)")
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version}, this reader knows {FORMAT_VERSION}")
    hbytes = data[PREAMBLE.size:PREAMBLE.size + hlen]
    if len(hbytes) != hlen or zlib.crc32(hbytes) != hcrc:
        raise ValueError("header CRC32 mismatch or header cut short")
    header = json.loads(zlib.decompress(hbytes).decode())
    payload = data[PREAMBLE.size + hlen:]
    if len(payload) != header["len"]:
        raise ValueError(f"payload has {len(payload)} bytes, header says {header['len']}")
    if zlib.crc32(payload) != header["crc"]:
        raise ValueError("payload CRC32 mismatch")
    off = 0

    def take(n):
        nonlocal off
        n = int(n)
        if n < 0 or off + n > len(payload):
            raise ValueError("stream lengths overrun the payload")
        out = payload[off:off + n]
        off += n
        return out

    params, masks = {}, {}
    for e in header["t"]:
        shape = tuple(int(s) for s in e["s"])
        size, k = int(np.prod(shape, dtype=np.int64)), int(e["k"])
        if not 0 <= k <= size:
            raise ValueError(f"{e['p']}: {k} kept of {size}")
        pos = _positions(e["i"], take(e["il"]), k, size)
        vals = _values(e["v"], take(e["vl"]), k)
        p, m = np.zeros(size, np.float32), np.zeros(size, np.float32)
        p[pos], m[pos] = vals, 1.0
        params[e["p"]], masks[e["p"]] = p.reshape(shape), m.reshape(shape)
    meta = dict(header["m"])
    for a in header["a"]:
        dt = np.dtype(a["d"])
        meta[a["n"]] = np.frombuffer(take(a["l"]), dt).reshape(a["s"]).astype(dt.newbyteorder("="))
    if off != len(payload):
        raise ValueError(f"{len(payload) - off} unread payload bytes")
    return params, masks, meta


def decode_flat(data: bytes, name: str = "<bytes>") -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray],
                                                             Dict[str, Any]]:
    """(flat params, flat masks, meta) from the bytes of a compact file, keyed by "vae/d1/kernel"-style paths.

    ``ValueError`` naming ``name`` if the bytes are corrupt or truncated.
    """
    try:
        return _decode(data)
    except ValueError as e:
        raise ValueError(f"compact file {name} is corrupt or truncated: {e}") from None
    except (zlib.error, KeyError, TypeError, IndexError, struct.error, UnicodeDecodeError) as e:
        raise ValueError(f"compact file {name} is corrupt or truncated: {type(e).__name__}: {e}") from None


def read_compact(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], Dict[str, Any]]:
    """(flat params, flat masks, meta) keyed by "vae/d1/kernel"-style paths.

    ``ValueError`` naming ``path`` if the file is corrupt or truncated.
    """
    with open(path, "rb") as f:
        data = f.read()
    return decode_flat(data, path)


# ---- layers: optional scipy sparse kernels ----------------------------------------------------------
try:  # optional dependency: without scipy the sparse path uses numpy kernels only
    import scipy.sparse as _sps
except Exception:  # pragma: no cover - depends on the environment
    _sps = None
try:  # scipy's compiled CSR products without the Python-level checks of ``csr_matrix @ x`` (a few µs
    # per call, which is most of a batch-1 matvec). Private API: verified against the public one at
    # load time, and the public ``csr_matrix`` product is used when it is missing or disagrees.
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec, csr_matvecs as _csr_matvecs
except Exception:  # pragma: no cover
    _csr_matvec = _csr_matvecs = None

KERNELS = ("auto", "dense", "csr", "gather")
SMALL_ROWS = 64  # rows of an MLP input up to which the batch-1 ("small") kernel choice applies
HAVE_SCIPY = _sps is not None  # the csr kernel is available (checked again per layer: tests patch _sps)
DENSE_FROM = 0.5  # kernel="auto": a layer keeping at least this share of its weights is dense, untimed
GATHER_MAX = 1 << 20  # kernel="auto": gather is timed only while kept weights x rows stay below this


def compact_mlp(kernels: List[np.ndarray], masks: List[np.ndarray], biases: List[np.ndarray]):
    """Dead-unit compaction of a ReLU MLP ``x -> relu(x W0 + b0) -> ... -> x W_{n-1} + b_{n-1}``.

    Exact up to float rounding, iterated to a fixed point, for every hidden layer
    (the output of ``W_i``, i < n-1; the definitions of ``diagnostics.unit_report``):

    * a unit with no kept OUTGOING weight (row of ``W_{i+1}`` all pruned) is never
      used: dropped (its column of ``W_i``, its bias, its row of ``W_{i+1}``);
    * a unit with no kept INCOMING weight (column of ``W_i`` all pruned) outputs the
      constant ``relu(b_u)``: folded, ``b_{i+1} += relu(b_u) * W_{i+1}[u, :]``, and dropped.

    Input features with no kept weight in ``W0`` are dropped too. Returns
    ``(inputs, kernels, masks, biases)``: ``inputs`` the kept input feature
    indices (None when all are kept), and the compacted float32 arrays; pruned
    weights are exactly 0. The output layer keeps all its units.
    """
    ms = [np.asarray(m) != 0 for m in masks]
    ws = [np.where(m, np.asarray(w, np.float32), np.float32(0)) for w, m in zip(kernels, ms)]
    bs = [np.asarray(b, np.float32).copy() for b in biases]
    n = len(ws)
    changed = True
    while changed:
        changed = False
        for i in range(n - 1):
            has_in, has_out = ms[i].any(0), ms[i + 1].any(1)
            const = ~has_in & has_out
            if const.any():
                bs[i + 1] = bs[i + 1] + np.maximum(bs[i][const], 0) @ ws[i + 1][const]
            keep = has_in & has_out
            if not keep.all():
                ws[i], ms[i], bs[i] = ws[i][:, keep], ms[i][:, keep], bs[i][keep]
                ws[i + 1], ms[i + 1] = ws[i + 1][keep], ms[i + 1][keep]
                changed = True
    inputs = None
    used = ms[0].any(1)
    if not used.all():
        inputs = np.flatnonzero(used).astype(np.intp)
        ws[0], ms[0] = ws[0][used], ms[0][used]
    return inputs, ws, ms, bs


class _Layer:
    """One layer ``y = x @ W + b`` of the sparse path, in transposed layout.

    Activations are ``(features, rows)``: ``h_out = W^T h_in + b[:, None]``, so a
    CSR matrix of ``W^T`` multiplies them in place without copies. Kernels:

    * ``dense``  BLAS on the (compacted) dense ``W^T``;
    * ``csr``    scipy CSR of ``W^T`` (needs scipy);
    * ``gather`` numpy gathers + ``np.add.reduceat`` over the kept weights.

    ``choice`` = (kernel for <= SMALL_ROWS rows, kernel for more rows).
    """

    def __init__(self, kernel: np.ndarray, mask: np.ndarray, bias: np.ndarray):
        self.n_in, self.n_out = kernel.shape
        self.wt = np.ascontiguousarray(kernel.T, dtype=np.float32)
        self.b = np.asarray(bias, np.float32)
        self.bcol = self.b[:, None]
        self.nnz = int(np.count_nonzero(mask))
        rows, cols = np.nonzero(mask.T != 0)  # CSR order of W^T: by output, then input
        self.cols = cols.astype(np.intp)
        self.vals = self.wt[rows, cols].astype(np.float32)
        self.used, starts = np.unique(rows, return_index=True)
        self.starts = starts.astype(np.intp)
        self.csr, self.fast_csr = None, False
        if _sps is not None:
            indptr = np.zeros(self.n_out + 1, np.int32)
            np.cumsum(np.bincount(rows, minlength=self.n_out), out=indptr[1:])
            self.csr = _sps.csr_matrix((self.vals.copy(), cols.astype(np.int32), indptr),
                                       shape=(self.n_out, self.n_in))
            self.fast_csr = self._check_fast_csr()
        self.choice = ("dense", "dense")
        self.reason = "default"

    def _check_fast_csr(self) -> bool:
        if _csr_matvec is None:
            return False
        try:
            x = np.linspace(-1, 1, self.n_in * 3, dtype=np.float32).reshape(self.n_in, 3)
            want = np.asarray(self.csr @ x)
            got1 = np.zeros(self.n_out, np.float32)
            _csr_matvec(self.n_out, self.n_in, self.csr.indptr, self.csr.indices, self.csr.data,
                        np.ascontiguousarray(x[:, 0]), got1)
            got = np.zeros((self.n_out, 3), np.float32)
            _csr_matvecs(self.n_out, self.n_in, 3, self.csr.indptr, self.csr.indices, self.csr.data, x, got)
            return bool(np.allclose(got1, want[:, 0], rtol=1e-5, atol=1e-5)
                        and np.allclose(got, want, rtol=1e-5, atol=1e-5))
        except Exception:  # pragma: no cover - private API changed
            return False

    def kernels(self) -> Tuple[str, ...]:
        return ("dense", "csr", "gather") if self.csr is not None else ("dense", "gather")

    def run(self, h: np.ndarray, kernel: str) -> np.ndarray:
        """W^T h + b for h (n_in, rows) C-contiguous float32 -> (n_out, rows)."""
        r = h.shape[1]
        if kernel == "dense":
            y = self.wt @ h
            y += self.bcol
            return y
        if kernel == "csr":
            if self.fast_csr:
                if r == 1:
                    y = self.b.copy()
                    _csr_matvec(self.n_out, self.n_in, self.csr.indptr, self.csr.indices, self.csr.data,
                                h.reshape(-1), y)
                    return y.reshape(self.n_out, 1)
                y = np.empty((self.n_out, r), np.float32)
                y[...] = self.bcol
                _csr_matvecs(self.n_out, self.n_in, r, self.csr.indptr, self.csr.indices, self.csr.data, h, y)
                return y
            y = np.asarray(self.csr @ h, np.float32)
            y += self.bcol
            return y
        if kernel == "gather":
            y = np.empty((self.n_out, r), np.float32)
            y[...] = self.bcol
            if self.nnz:
                y[self.used] += np.add.reduceat(h[self.cols] * self.vals[:, None], self.starts, axis=0)
            return y
        raise ValueError(f"unknown kernel {kernel!r}")

    def __call__(self, h: np.ndarray) -> np.ndarray:
        return self.run(h, self.choice[h.shape[1] > SMALL_ROWS])

    def tune(self, kernel: str, rows: Tuple[int, int], rng: np.random.Generator, budget_s: float = 0.02):
        """Pick ``choice``: ``kernel`` itself, or for "auto" dense when the layer is (nearly) dense,
        else the fastest kernel timed at ``rows``; ``reason`` says which rule chose it."""
        if kernel != "auto":
            if kernel not in self.kernels():
                raise ValueError(f"kernel {kernel!r} is not available here (scipy missing?)")
            self.choice, self.reason = (kernel, kernel), "forced"
            return
        size = self.n_in * self.n_out
        if self.nnz >= size:
            self.choice, self.reason = ("dense", "dense"), "no pruned weights"
            return
        if self.nnz >= DENSE_FROM * size:
            self.choice, self.reason = ("dense", "dense"), f"density {self.nnz / size:.0%} >= {DENSE_FROM:.0%}"
            return
        choice = []
        for r in rows:
            h = np.maximum(rng.standard_normal((self.n_in, r)), 0).astype(np.float32)
            best = None
            for k in self.kernels():
                if k == "gather" and self.nnz * r > GATHER_MAX:  # its temporaries would dwarf a dense product
                    continue
                self.run(h, k)  # warm up
                ts, t_end = [], time.perf_counter() + budget_s
                while len(ts) < 3 or (len(ts) < 50 and time.perf_counter() < t_end):
                    t0 = time.perf_counter()
                    self.run(h, k)
                    ts.append(time.perf_counter() - t0)
                t = min(ts)
                if best is None or t < best[0]:
                    best = (t, k)
            choice.append(best[1])
        self.choice = tuple(choice)
        self.reason = "timed" + ("" if "csr" in self.kernels() else " (no scipy: no csr)")


class _SparseMLP:
    """A compacted ReLU MLP on the sparse-aware kernels; called on (..., n_in) row layout."""

    def __init__(self, kernels, masks, biases):
        self.n_in, self.n_out = kernels[0].shape[0], kernels[-1].shape[1]
        self.units_before = [k.shape[1] for k in kernels[:-1]]
        self.nnz_before = [int(np.count_nonzero(m)) for m in masks]
        self.inputs, ws, ms, bs = compact_mlp(kernels, masks, biases)
        self.layers = [_Layer(w, m, b) for w, m, b in zip(ws, ms, bs)]

    def __call__(self, x):
        x = np.asarray(x, np.float32)
        lead = x.shape[:-1]
        h = x.reshape(-1, self.n_in)
        if self.inputs is not None:
            h = h[:, self.inputs]
        h = np.ascontiguousarray(h.T)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < last:
                np.maximum(h, 0, out=h)
        return h.T.reshape(lead + (self.n_out,))

    def summary(self) -> List[Dict[str, Any]]:
        """Per layer: units / kept weights before and after compaction, the kernel chosen."""
        out = []
        for i, layer in enumerate(self.layers):
            out.append({"in": layer.n_in, "out": layer.n_out, "nnz": layer.nnz, "nnz_before": self.nnz_before[i],
                        "units_before": self.units_before[i] if i < len(self.units_before) else layer.n_out,
                        "density": layer.nnz / max(1, layer.n_in * layer.n_out), "kernel": layer.choice,
                        "reason": layer.reason})
        return out


class _DenseLayer:
    """y = x @ kernel + bias on the uncompacted weights (the plain dense reference)."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, xp):
        self.kernel, self.bias = xp.asarray(kernel, dtype=xp.float32), xp.asarray(bias, dtype=xp.float32)

    def __call__(self, x):
        return x @ self.kernel + self.bias


def _numbered(flat: Dict[str, np.ndarray], prefix: str, letter: str) -> List[str]:
    """Layer names ``letter + i`` under ``prefix``, in numeric order."""
    names = set()
    for key in flat:
        if key.startswith(prefix + "/"):
            name = key[len(prefix) + 1:].split("/")[0]
            if name.startswith(letter) and name[len(letter):].isdigit():
                names.add(name)
    return sorted(names, key=lambda n: int(n[len(letter):]))


def _mlp_key(op: Dict[str, Any]) -> str:
    return f"{op['net']}/{op['layer']}"


# ---- the checks of a file at load ---------------------------------------------------------------------
# op -> (the fields it needs, the fields naming a value it reads); "in" is a list of value names
OPS = {"mlp": (("net", "layer", "in", "out"), ("in",)), "tanh": (("x", "out"), ("x",)),
       "add": (("x", "y", "out"), ("x", "y")), "clip": (("x", "lo", "hi", "out"), ("x",)),
       "repeat": (("x", "n", "out"), ("x",)), "argmax_select": (("values", "score", "out"), ("values", "score"))}
_NEEDED_CONFIG = ("obs_dim", "act_dim", "max_action")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def check_policy_file(params: Dict[str, np.ndarray], meta: Dict[str, Any], path: str = "<memory>") -> None:
    """``ValueError`` "compact file <path>: ..." in one line if the file cannot act: its config lacks
    ``obs_dim`` / ``act_dim`` / ``max_action`` (or holds bad values), its acting program has an op this
    reader does not know, an op without a field it needs, reads a value nothing produced before it, or
    an MLP whose layers the file lacks or whose widths do not chain; ``obs_mean`` / ``obs_std`` of the
    wrong shape. Everything :class:`Policy` would otherwise find only at the first ``act()``."""
    where = f"compact file {path}"
    obs_dim, act_dim = _check_config(meta, where)
    prog = meta["acting"]
    if not isinstance(prog, dict) or not isinstance(prog.get("ops"), list) or not isinstance(prog.get("output"), str):
        raise ValueError(f"{where}: its acting program must be a mapping with a list 'ops' and a value name "
                         f"'output', got {str(prog)[:80]!r}")
    width = _noise_widths(prog, obs_dim, where)
    for i, op in enumerate(prog["ops"]):
        _check_op(params, op, i, width, where)
    out = prog["output"]
    if out not in width:
        raise ValueError(f"{where}: acting program output {out!r} is a value nothing produces "
                         f"(there are: {', '.join(width)})")
    if width[out] is not None and width[out] != act_dim:
        raise ValueError(f"{where}: acting program output {out!r} has {width[out]} components, config act_dim is "
                         f"{act_dim}")


def _check_config(meta: Dict[str, Any], where: str) -> Tuple[int, int]:
    """(obs_dim, act_dim) of a file's config, after checking it and the observation statistics."""
    c = meta["config"]
    if not isinstance(c, dict):
        raise ValueError(f"{where}: its agent config is a {type(c).__name__}, not a mapping")
    missing = [k for k in _NEEDED_CONFIG if k not in c]
    if missing:
        raise ValueError(f"{where}: its config lacks {', '.join(repr(k) for k in missing)}, which the policy needs "
                         "(export the run again with sparse_orl.export.export_run)")
    for k in ("obs_dim", "act_dim"):
        if not _is_int(c[k]) or c[k] < 1:
            raise ValueError(f"{where}: config {k!r} must be a positive integer, got {c[k]!r}")
    if isinstance(c["max_action"], bool) or not isinstance(c["max_action"], (int, float, np.number)) \
            or not np.isfinite(c["max_action"]) or c["max_action"] <= 0:
        raise ValueError(f"{where}: config 'max_action' must be a positive finite number, got {c['max_action']!r}")
    obs_dim, act_dim = int(c["obs_dim"]), int(c["act_dim"])
    for k in ("obs_mean", "obs_std"):
        if k in meta and np.shape(meta[k]) != (obs_dim,):
            raise ValueError(f"{where}: {k!r} has shape {np.shape(meta[k])}, expected ({obs_dim},) (config obs_dim)")
    if c.get("normalize_obs") and "obs_std" in meta and not np.all(np.asarray(meta["obs_std"], np.float64) > 0):
        raise ValueError(f"{where}: 'obs_std' holds values <= 0 or NaN: observations cannot be normalized by it")
    return obs_dim, act_dim


def _noise_widths(prog: Dict[str, Any], obs_dim: int, where: str) -> Dict[str, Optional[int]]:
    """The widths of the values an acting program starts with: ``obs`` and each noise input."""
    noise = prog.get("noise", {})
    if not isinstance(noise, dict):
        raise ValueError(f"{where}: acting program 'noise' must map names to {{'shape', 'clip'}}, got {noise!r}")
    width: Dict[str, Optional[int]] = {"obs": obs_dim}
    for name, v in noise.items():
        ok = isinstance(v, dict) and isinstance(v.get("shape"), list) and all(_is_int(d) and d >= 1 for d in v["shape"])
        if not ok or isinstance(v.get("clip"), bool) or not isinstance(v.get("clip"), (int, float)):
            raise ValueError(f"{where}: acting program noise {name!r} must be {{'shape': [positive ints], "
                             f"'clip': number}}, got {v!r}")
        width[name] = int(v["shape"][-1]) if v["shape"] else None
    return width


def _check_op(params, op, i: int, width: Dict[str, Optional[int]], where: str) -> None:
    """Check acting op ``i`` against the values produced before it (``width``), then record its output."""
    kind = op.get("op") if isinstance(op, dict) else None
    if kind not in OPS:
        raise ValueError(f"{where}: acting program op {i} is {kind!r}, an op this reader does not know (it knows "
                         f"{', '.join(OPS)}): a newer sparse_orl wrote this file? use that version's deploy.py")
    fields, reads = OPS[kind]
    lack = [f for f in fields if f not in op]
    if lack:
        raise ValueError(f"{where}: acting program op {i} ({kind!r}) lacks the field(s) "
                         f"{', '.join(repr(f) for f in lack)}")
    label = f"acting program op {i} ({kind!r} -> {op['out']!r})"
    names = []
    for f in reads:
        v = op[f]
        if f == "in" and not (isinstance(v, list) and v):
            raise ValueError(f"{where}: {label}: 'in' must be a non-empty list of value names, got {v!r}")
        names += v if f == "in" else [v]
    for v in names:
        if not isinstance(v, str) or v not in width:
            raise ValueError(f"{where}: {label} reads the value {v!r}, which nothing before it produces "
                             f"(there are: {', '.join(width)})")
    if not isinstance(op["out"], str):
        raise ValueError(f"{where}: {label}: 'out' must be a value name")
    if kind == "repeat" and not (_is_int(op["n"]) and op["n"] >= 1):
        raise ValueError(f"{where}: {label}: 'n' must be a positive integer, got {op['n']!r}")
    if kind == "clip" and not all(isinstance(op[k], (int, float)) and not isinstance(op[k], bool)
                                  for k in ("lo", "hi")):
        raise ValueError(f"{where}: {label}: 'lo' and 'hi' must be numbers")
    out_width = width[names[0]]
    if kind == "argmax_select":
        out_width = width[op["values"]]
    elif kind == "mlp":
        out_width = _check_mlp(params, op, [width[v] for v in names], where, label)
    width[op["out"]] = out_width


def _check_mlp(params, op, in_widths, where: str, label: str) -> Optional[int]:
    """The layers ``<net>/<layer>1, 2, ...`` that an mlp op reads: present (kernel and bias), 2-D kernels
    that chain, biases of their widths, fed as many features as the first takes. Returns the output
    width (None with ``squeeze``)."""
    prefix, letter = str(op["net"]), str(op["layer"])
    names = _numbered(params, prefix, letter)
    if not names:
        raise ValueError(f"{where}: {label} reads the network layers {prefix}/{letter}1, {prefix}/{letter}2, ..., "
                         "which the file lacks")
    if names != [f"{letter}{j}" for j in range(1, len(names) + 1)]:
        raise ValueError(f"{where}: {label}: the layers of {prefix} are {', '.join(names)}, not "
                         f"{letter}1..{letter}{len(names)} in a row")
    prev = None
    for n in names:
        key = f"{prefix}/{n}"
        for leaf in ("kernel", "bias"):
            if f"{key}/{leaf}" not in params:
                raise ValueError(f"{where}: {label}: the file lacks {key}/{leaf}")
        k, b = np.shape(params[f"{key}/kernel"]), np.shape(params[f"{key}/bias"])
        if len(k) != 2 or b != (k[-1],):
            raise ValueError(f"{where}: {label}: {key} has kernel {k} and bias {b}, expected (in, out) and (out,)")
        if prev is not None and k[0] != prev:
            raise ValueError(f"{where}: {label}: {key} takes {k[0]} inputs, the layer before it gives {prev}")
        prev = k[1]
    first = np.shape(params[f"{prefix}/{names[0]}/kernel"])[0]
    if all(w is not None for w in in_widths) and sum(in_widths) != first:
        raise ValueError(f"{where}: {label} feeds {sum(in_widths)} features ({' + '.join(map(str, in_widths))} of "
                         f"{', '.join(map(repr, op['in']))}) to {prefix}/{names[0]}, which takes {first}")
    return None if op.get("squeeze") else prev


class Policy:
    """A deployed policy. ``Policy.load(path)``, then ``policy.act(obs)``.

    The acting rule is the file's acting program (``meta["acting"]``, written by
    ``export_run`` from ``Algorithm.acting_program``): named values flow through ops

    * ``mlp``: a ReLU MLP over the layers ``<net>/<layer>1, 2, ...`` of the concatenated inputs
      (``squeeze``: drop a last axis of size 1);
    * ``tanh`` (times ``scale``), ``add``, ``clip`` (``lo``, ``hi``);
    * ``repeat``: ``x[..., None, :]`` broadcast to ``n`` copies;
    * ``argmax_select``: the row of ``values`` (..., n, d) where ``score`` (..., n) is largest.

    Inputs: ``obs`` (normalized first when the config says ``normalize_obs``) and the
    program's noise (standard normal draws of ``noise[name]["shape"]``, clipped to
    ``±clip``; ``act`` draws them, or takes ``z=`` for the noise named "z").
    """

    def __init__(self, params: Dict[str, np.ndarray], masks: Dict[str, np.ndarray], meta: Dict[str, Any],
                 backend: str = "numpy", sparse: bool = False, path: str = "<memory>", kernel: str = "auto"):
        if backend not in ("numpy", "jax"):
            raise ValueError(f"backend must be 'numpy' or 'jax', got {backend!r}")
        if sparse and backend != "numpy":
            raise ValueError("sparse=True runs on the numpy backend only")
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        if "config" not in meta:
            raise ValueError(f"compact file {path} holds no agent config (not written by export_run)")
        if "acting" not in meta:
            raise ValueError(f"compact file {path} holds no acting program (written before sparse_orl 0.2): "
                             "export the run again with sparse_orl.export.export_run")
        check_policy_file(params, meta, path)
        if backend == "jax":  # the one non-numpy import of this file, only when jax is asked for
            import jax
            import jax.numpy as jnp

            xp = jnp
        else:
            xp = np
        self.xp, self.backend, self.sparse, self.meta = xp, backend, bool(sparse), meta
        c = self.config = dict(meta["config"])
        self.program = meta["acting"]
        self.algo = c.get("algo")
        self.obs_dim, self.act_dim = int(c["obs_dim"]), int(c["act_dim"])
        self.max_action = float(c["max_action"])
        self.normalize_obs = bool(c.get("normalize_obs", False))
        self.obs_mean = np.asarray(meta.get("obs_mean", np.zeros(self.obs_dim)), np.float32)
        self.obs_std = np.asarray(meta.get("obs_std", np.ones(self.obs_dim)), np.float32)
        self.noise = {k: (tuple(int(d) for d in v["shape"]), float(v["clip"]))
                      for k, v in self.program.get("noise", {}).items()}

        def mlp(prefix, letter):
            names = _numbered(params, prefix, letter)
            if not names:
                raise ValueError(f"compact file {path} lacks the layers {prefix}/{letter}1... its acting program reads")
            ks = [params[f"{prefix}/{n}/kernel"] for n in names]
            ms = [masks[f"{prefix}/{n}/kernel"] for n in names]
            bs = [params[f"{prefix}/{n}/bias"] for n in names]
            if sparse:
                return _SparseMLP(ks, ms, bs)
            layers = [_DenseLayer(k, b, xp) for k, b in zip(ks, bs)]
            f = lambda x: self._dense_mlp(layers, x)  # noqa: E731
            f.summary = lambda: [{"in": int(np.shape(k)[0]), "out": int(np.shape(k)[1]),
                                  "nnz": int(np.count_nonzero(m)), "nnz_before": int(np.count_nonzero(m)),
                                  "units_before": int(np.shape(k)[1]),
                                  "density": float(np.count_nonzero(m)) / max(1, int(np.size(m))),
                                  "kernel": "dense", "reason": "sparse=False"} for k, m in zip(ks, ms)]
            return f

        self._nets = {}
        for op in self.program["ops"]:
            if op["op"] == "mlp" and _mlp_key(op) not in self._nets:
                self._nets[_mlp_key(op)] = mlp(op["net"], op["layer"])
        if sparse:
            # rows each MLP sees for one observation (e.g. BCQ's num_act_samples candidates) and a batch
            n = int(np.prod([op["n"] for op in self.program["ops"] if op["op"] == "repeat"] or [1]))
            rng = np.random.default_rng(0)
            for net in self._nets.values():
                for layer in net.layers:
                    layer.tune(kernel, (n, 256), rng)
        self._fwd = self._forward
        if backend == "jax":
            self._fwd = jax.jit(self._forward)

    @classmethod
    def load(cls, path: str, backend: str = "numpy", sparse: Optional[bool] = None, kernel: str = "auto") -> "Policy":
        """Read ``path`` (see the module docstring for ``backend``, ``sparse`` and ``kernel``).

        ``sparse`` defaults to True on the numpy backend (the compacted sparse-aware kernels,
        the fast path) and False on jax.
        """
        params, masks, meta = read_compact(path)
        if sparse is None:
            sparse = backend == "numpy"
        return cls(params, masks, meta, backend, sparse, path, kernel)

    def _mlps(self) -> Dict[str, Any]:
        return dict(self._nets)

    def kernel_summary(self) -> Dict[str, List[Dict[str, Any]]]:
        """Per network and layer: shapes, kept weights and the kernel used ("dense" with sparse=False)."""
        return {name: net.summary() for name, net in self._mlps().items()}

    # ---- the networks (deterministic) ----------------------------------------------------
    def _dense_mlp(self, layers, x):
        relu = (lambda v: self.xp.maximum(v, 0.0))
        for layer in layers[:-1]:
            x = relu(layer(x))
        return layers[-1](x)

    def network(self, net: str, layer: str):
        """The raw MLP ``<net>/<layer>1, 2, ...`` (e.g. ``network("vae", "d")``) as a function of its input."""
        return self._nets[f"{net}/{layer}"]

    def normalize(self, obs):
        if not self.normalize_obs:
            return obs
        return (obs - self.obs_mean) / self.obs_std

    def run_program(self, values: Dict[str, Any]) -> Any:
        """The acting program on ``values`` (``obs`` already normalized, noise already clipped)."""
        xp, env = self.xp, dict(values)
        f32 = lambda v: xp.asarray(v, dtype=xp.float32)  # noqa: E731
        for op in self.program["ops"]:
            kind = op["op"]
            if kind == "mlp":
                x = xp.concatenate([f32(env[k]) for k in op["in"]], axis=-1)
                y = self._nets[_mlp_key(op)](x)
                out = y[..., 0] if op.get("squeeze") else y
            elif kind == "tanh":
                out = float(op.get("scale", 1.0)) * xp.tanh(env[op["x"]])
            elif kind == "add":
                out = f32(env[op["x"]]) + env[op["y"]]
            elif kind == "clip":
                out = xp.clip(env[op["x"]], float(op["lo"]), float(op["hi"]))
            elif kind == "repeat":
                x = env[op["x"]]
                out = xp.broadcast_to(x[..., None, :], x.shape[:-1] + (int(op["n"]), x.shape[-1]))
            elif kind == "argmax_select":
                vals = env[op["values"]]
                best = xp.argmax(env[op["score"]], axis=-1)
                out = xp.take_along_axis(vals, best[..., None, None], axis=-2)[..., 0, :]
            else:
                raise ValueError(f"unknown op {kind!r} in the acting program (a newer sparse_orl wrote this file?)")
            env[op["out"]] = out
        return env[self.program["output"]]

    def _forward(self, obs, noise):
        xp = self.xp
        values = {"obs": self.normalize(xp.asarray(obs, dtype=xp.float32))}
        for name, (_, clip) in self.noise.items():
            values[name] = xp.clip(noise[name], -clip, clip)
        return self.run_program(values)

    # ---- acting ----------------------------------------------------------------------------
    def latent_shape(self, batch_shape: Tuple[int, ...], name: str = "z") -> Tuple[int, ...]:
        """Shape of the N(0, I) draws named ``name`` for observations of batch shape ``batch_shape``."""
        return tuple(batch_shape) + self.noise[name][0]

    @property
    def latent_dim(self) -> Optional[int]:
        return self.noise["z"][0][-1] if "z" in self.noise else None

    def act(self, obs, rng=None, z=None) -> np.ndarray:
        """Actions (..., act_dim) float32 for observations (..., obs_dim).

        ``z``: standard-normal draws of shape :meth:`latent_shape` (clipped here) for the
        noise named "z"; drawn from ``rng`` (a ``np.random.Generator``, an int seed or None
        for fresh entropy) when not given. Non-finite observations are refused.
        """
        obs = np.asarray(obs, np.float32)
        if obs.shape[-1:] != (self.obs_dim,):
            raise ValueError(f"obs has shape {obs.shape}, expected (..., {self.obs_dim})")
        if not np.all(np.isfinite(obs)):
            raise ValueError("obs holds NaN or inf values: a policy must not act on them")
        noise = {}
        for name in self.noise:
            shape = self.latent_shape(obs.shape[:-1], name)
            draw = z if name == "z" else None
            if draw is None:
                rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
                draw = rng.standard_normal(shape, dtype=np.float32)
            draw = np.asarray(draw, np.float32)
            if draw.shape != shape:
                raise ValueError(f"{name} has shape {draw.shape}, expected {shape}")
            noise[name] = draw
        return np.asarray(self._fwd(obs, noise), np.float32)
