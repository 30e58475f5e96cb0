"""Standalone policy for deployment: load a compact file, act(obs). numpy only.

This module imports numpy and the standard library only (jax only when
``backend="jax"`` is asked for), never flax or the rest of ``sparse_orl``, so
it can be copied to a device together with a file written by
``sparse_orl.export.export_run``. It re-implements the decoding of the compact
format (documented in ``sparse_orl/export.py``, format version 1).

Acting rules (the training code's ``Agent.act``):

* BC:  one VAE decode G(s, z), z ~ N(0, I) clipped to ±bc_act_latent_clip.
* BCQ: argmax_j Q1(s, ξ(s, G(s, z_j))) over num_act_samples latents z_j
  clipped to ±train_latent_clip, ξ(s, a) = clip(a + φ·max_action·tanh(f([s, a])), ±max_action).

Observations are normalized (obs - mean) / std first when the config says
``normalize_obs``. The math is float32; a run trained with
``compute_dtype="bfloat16"`` matmuls acts slightly differently here.

``sparse=True`` runs each pruned kernel as a sparse matvec over its kept
weights (column-sorted CSR of the kernel's transpose, numpy gathers and
``np.add.reduceat``) instead of a dense matmul; results agree with the dense
path to float32 rounding.
"""
from __future__ import annotations

import json
import struct
import zlib
from typing import Any, Dict, List, Tuple

import numpy as np

MAGIC = b"\x89SOC"
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct("<4sBII")
_ITEMSIZE = {"f32": 4, "f16": 2, "bf16": 2}


# ---- file decoding (mirrors sparse_orl.export; kept separate on purpose) ------------
def _positions(codec: str, buf: bytes, k: int, size: int) -> np.ndarray:
    if codec.endswith("z"):
        buf, codec = zlib.decompress(buf), codec[:-1]
    if codec == "full":
        if buf or k != size:
            raise ValueError("bad 'full' tensor")
        return np.arange(size, dtype=np.int64)
    if codec == "bmp":
        if len(buf) != (size + 7) // 8:
            raise ValueError("bitmap length mismatch")
        pos = np.flatnonzero(np.unpackbits(np.frombuffer(buf, np.uint8), count=size, bitorder="little"))
    elif codec == "g8":
        b = np.frombuffer(buf, np.uint8)
        ends = np.flatnonzero(b != 255)
        if len(ends) != k or (len(b) and b[-1] == 255):
            raise ValueError("gap stream count mismatch")
        pos = np.cumsum(b, dtype=np.int64)[ends] + np.arange(k, dtype=np.int64)
    else:
        raise ValueError(f"unknown index codec {codec!r}")
    if len(pos) != k or (k and pos[-1] >= size):
        raise ValueError("index stream inconsistent with header")
    return pos


def _values(codec: str, buf: bytes, k: int) -> np.ndarray:
    split = codec.endswith("z")
    v = codec[:-1] if split else codec
    if v not in _ITEMSIZE:
        raise ValueError(f"unknown value codec {codec!r}")
    isz = _ITEMSIZE[v]
    if split:
        low = (isz - 1) * k
        top = np.frombuffer(zlib.decompress(buf[: len(buf) - low]), np.uint8) if len(buf) >= low else None
        if top is None or len(top) != k:
            raise ValueError("value stream length mismatch")
        planes = np.empty((k, isz), np.uint8)
        planes[:, -1] = top
        planes[:, :-1] = np.frombuffer(buf[len(buf) - low:], np.uint8).reshape(k, isz - 1)
        buf = planes.tobytes()
    elif len(buf) != isz * k:
        raise ValueError("value stream length mismatch")
    if v == "f32":
        return np.frombuffer(buf, "<f4").astype(np.float32)
    if v == "f16":
        return np.frombuffer(buf, "<f2").astype(np.float32)
    return (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)


def read_compact(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], Dict[str, Any]]:
    """(flat params, flat masks, meta) keyed by "vae/d1/kernel"-style paths.

    ``ValueError`` naming ``path`` if the file is corrupt or truncated.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        if len(data) < _PREAMBLE.size:
            raise ValueError("shorter than the preamble")
        magic, version, hlen, hcrc = _PREAMBLE.unpack_from(data)
        if magic != MAGIC:
            raise ValueError("bad magic (not a sparse_orl compact file)")
        if version != FORMAT_VERSION:
            raise ValueError(f"format version {version}, this loader knows {FORMAT_VERSION}")
        hbytes = data[_PREAMBLE.size:_PREAMBLE.size + hlen]
        if len(hbytes) != hlen or zlib.crc32(hbytes) != hcrc:
            raise ValueError("header CRC32 mismatch or header cut short")
        header = json.loads(zlib.decompress(hbytes).decode())
        payload = data[_PREAMBLE.size + hlen:]
        if len(payload) != header["len"] or zlib.crc32(payload) != header["crc"]:
            raise ValueError("payload length or CRC32 mismatch")
        off = 0
        params, masks = {}, {}
        for e in header["t"]:
            shape = tuple(int(s) for s in e["s"])
            size, k = int(np.prod(shape, dtype=np.int64)), int(e["k"])
            il, vl = int(e["il"]), int(e["vl"])
            if min(il, vl) < 0 or off + il + vl > len(payload):
                raise ValueError("stream lengths overrun the payload")
            pos = _positions(e["i"], payload[off:off + il], k, size)
            vals = _values(e["v"], payload[off + il:off + il + vl], k)
            off += il + vl
            p, m = np.zeros(size, np.float32), np.zeros(size, np.float32)
            p[pos], m[pos] = vals, 1.0
            params[e["p"]], masks[e["p"]] = p.reshape(shape), m.reshape(shape)
        meta = dict(header["m"])
        for a in header["a"]:
            dt, n = np.dtype(a["d"]), int(a["l"])
            if n < 0 or off + n > len(payload):
                raise ValueError("array lengths overrun the payload")
            meta[a["n"]] = np.frombuffer(payload[off:off + n], dt).reshape(a["s"]).astype(dt.newbyteorder("="))
            off += n
        if off != len(payload):
            raise ValueError("unread payload bytes")
    except ValueError as e:
        raise ValueError(f"compact file {path} is corrupt or truncated: {e}") from None
    except (zlib.error, KeyError, TypeError, IndexError, struct.error, UnicodeDecodeError) as e:
        raise ValueError(f"compact file {path} is corrupt or truncated: {type(e).__name__}: {e}") from None
    return params, masks, meta


# ---- layers -------------------------------------------------------------------------
class _Layer:
    """y = x @ kernel + bias, dense or as a sparse matvec over the kept weights."""

    def __init__(self, kernel: np.ndarray, mask: np.ndarray, bias: np.ndarray, sparse: bool, xp):
        self.xp, self.out = xp, kernel.shape[1]
        self.sparse = bool(sparse) and not bool(np.all(mask != 0))
        if self.sparse:
            rows, cols = np.nonzero(mask.T != 0)  # sorted by output column, then input row
            self.cols_in = cols.astype(np.intp)  # input index of each kept weight
            self.vals = kernel.T[rows, cols].astype(np.float32)
            self.used, starts = np.unique(rows, return_index=True)
            self.starts = starts.astype(np.intp)
            self.bias = bias.astype(np.float32)
        else:
            self.kernel, self.bias = xp.asarray(kernel, dtype=xp.float32), xp.asarray(bias, dtype=xp.float32)

    def __call__(self, x):
        if not self.sparse:
            return x @ self.kernel + self.bias
        lead = x.shape[:-1]
        x2 = np.asarray(x, np.float32).reshape(-1, x.shape[-1])
        y = np.zeros((x2.shape[0], self.out), np.float32)
        if len(self.vals):
            y[:, self.used] = np.add.reduceat(x2[:, self.cols_in] * self.vals, self.starts, axis=1)
        return (y + self.bias).reshape(lead + (self.out,))


def _numbered(flat: Dict[str, np.ndarray], prefix: str, letter: str) -> List[str]:
    """Layer names ``letter + i`` under ``prefix``, in numeric order."""
    names = set()
    for key in flat:
        if key.startswith(prefix + "/"):
            name = key[len(prefix) + 1:].split("/")[0]
            if name.startswith(letter) and name[len(letter):].isdigit():
                names.add(name)
    return sorted(names, key=lambda n: int(n[len(letter):]))


class Policy:
    """A deployed BC / BCQ policy. ``Policy.load(path)``, then ``policy.act(obs)``."""

    def __init__(self, params: Dict[str, np.ndarray], masks: Dict[str, np.ndarray], meta: Dict[str, Any],
                 backend: str = "numpy", sparse: bool = False, path: str = "<memory>"):
        if backend not in ("numpy", "jax"):
            raise ValueError(f"backend must be 'numpy' or 'jax', got {backend!r}")
        if sparse and backend != "numpy":
            raise ValueError("sparse=True runs on the numpy backend only")
        if "config" not in meta:
            raise ValueError(f"compact file {path} holds no agent config (not written by export_run)")
        if backend == "jax":
            import jax
            import jax.numpy as jnp

            xp = jnp
        else:
            xp = np
        self.xp, self.backend, self.sparse, self.meta = xp, backend, bool(sparse), meta
        c = self.config = dict(meta["config"])
        self.algo = c["algo"]
        self.obs_dim, self.act_dim = int(c["obs_dim"]), int(c["act_dim"])
        self.max_action = float(c["max_action"])
        self.latent_dim = int(c.get("latent_dim") or 2 * self.act_dim)
        self.normalize_obs = bool(c.get("normalize_obs", False))
        self.obs_mean = np.asarray(meta.get("obs_mean", np.zeros(self.obs_dim)), np.float32)
        self.obs_std = np.asarray(meta.get("obs_std", np.ones(self.obs_dim)), np.float32)

        def mlp(prefix, letter):
            names = _numbered(params, prefix, letter)
            if not names:
                raise ValueError(f"compact file {path} lacks the layers of {prefix!r}")
            return [_Layer(params[f"{prefix}/{n}/kernel"], masks[f"{prefix}/{n}/kernel"],
                           params[f"{prefix}/{n}/bias"], sparse, xp) for n in names]

        self._dec = mlp("vae", "d")
        if self.algo == "bcq":
            self._actor = mlp("actor/net", "l")
            self._q1 = mlp("critic/q1/net", "l")
        elif self.algo != "bc":
            raise ValueError(f"unknown algo {self.algo!r}")
        self._fwd = self._forward
        if backend == "jax":
            self._fwd = jax.jit(self._forward)

    @classmethod
    def load(cls, path: str, backend: str = "numpy", sparse: bool = False) -> "Policy":
        params, masks, meta = read_compact(path)
        return cls(params, masks, meta, backend, sparse, path)

    # ---- the networks (deterministic) ----------------------------------------------------
    def _mlp(self, layers, x):
        relu = (lambda v: self.xp.maximum(v, 0.0))
        for layer in layers[:-1]:
            x = relu(layer(x))
        return layers[-1](x)

    def _cat(self, a, b):
        a, b = self.xp.asarray(a, dtype=self.xp.float32), self.xp.asarray(b, dtype=self.xp.float32)
        return self.xp.concatenate([a, b], axis=-1)

    def decode(self, obs, z):
        """G(s, z) = max_action·tanh(decoder([s, z])) (s already normalized, z as given)."""
        return self.max_action * self.xp.tanh(self._mlp(self._dec, self._cat(obs, z)))

    def perturb(self, obs, action):
        """ξ(s, a) = clip(a + φ·max_action·tanh(f([s, a])), ±max_action) (BCQ)."""
        delta = self._mlp(self._actor, self._cat(obs, action))
        a = self.xp.asarray(action, dtype=self.xp.float32) + self.config["phi"] * self.max_action * self.xp.tanh(delta)
        return self.xp.clip(a, -self.max_action, self.max_action)

    def q1(self, obs, action):
        """Q1(s, a) (BCQ), shape obs.shape[:-1]."""
        return self._mlp(self._q1, self._cat(obs, action))[..., 0]

    def normalize(self, obs):
        if not self.normalize_obs:
            return obs
        return (obs - self.obs_mean) / self.obs_std

    def _forward(self, obs, z):
        xp = self.xp
        obs = self.normalize(xp.asarray(obs, dtype=xp.float32))
        c = self.config
        if self.algo == "bc":
            clip = float(c["bc_act_latent_clip"])
            return self.decode(obs, xp.clip(z, -clip, clip))
        clip = float(c["train_latent_clip"])
        n = z.shape[-2]
        s_rep = xp.broadcast_to(obs[..., None, :], obs.shape[:-1] + (n, obs.shape[-1]))
        cand = self.perturb(s_rep, self.decode(s_rep, xp.clip(z, -clip, clip)))
        best = xp.argmax(self.q1(s_rep, cand), axis=-1)
        return xp.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]

    # ---- acting ----------------------------------------------------------------------------
    def latent_shape(self, batch_shape: Tuple[int, ...]) -> Tuple[int, ...]:
        """Shape of the N(0, I) draws ``act`` takes for observations of batch shape ``batch_shape``."""
        n = () if self.algo == "bc" else (int(self.config["num_act_samples"]),)
        return tuple(batch_shape) + n + (self.latent_dim,)

    def act(self, obs, rng=None, z=None) -> np.ndarray:
        """Actions (..., act_dim) float32 for observations (..., obs_dim).

        ``z``: standard-normal latents of shape :meth:`latent_shape` (clipped
        here); drawn from ``rng`` (a ``np.random.Generator``, an int seed or
        None for fresh entropy) when not given.
        """
        obs = np.asarray(obs, np.float32)
        if obs.shape[-1:] != (self.obs_dim,):
            raise ValueError(f"obs has shape {obs.shape}, expected (..., {self.obs_dim})")
        shape = self.latent_shape(obs.shape[:-1])
        if z is None:
            rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            z = rng.standard_normal(shape, dtype=np.float32)
        z = np.asarray(z, np.float32)
        if z.shape != shape:
            raise ValueError(f"z has shape {z.shape}, expected {shape}")
        return np.asarray(self._fwd(obs, z), np.float32)
