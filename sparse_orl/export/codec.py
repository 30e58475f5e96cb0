"""The compact file format of pruned networks: encoding, decoding, save / load. numpy only.

A compact file holds param trees (nested dicts of float32 arrays), their 0/1
masks, and a metadata dict (architecture / agent config, observation
statistics as float32 arrays, anything JSON-serializable). Loading it gives
back the kept weights bit for bit (float32) and the masks exactly; pruned
positions come back as +0.0 (a -0.0 left there by ``w * 0`` is not kept).

File layout (all integers little-endian)::

    magic  b"\\x89SOC"          4 B
    version                    u8   (FORMAT_VERSION)
    header length              u32
    header CRC32               u32
    header                     zlib-compressed UTF-8 JSON:
        {"crc": payload CRC32, "len": payload bytes,
         "t": [{"p": "vae/d1/kernel", "s": shape, "k": kept count,
                "i": index codec, "il": index bytes,
                "v": value codec, "vl": value bytes}, ...],
         "a": [{"n": meta key, "d": numpy dtype str, "s": shape, "l": bytes}, ...],
         "m": the JSON part of the metadata}
    payload: per tensor its index bytes then its value bytes (in "t" order),
             then the raw bytes of every metadata array (in "a" order)

Index codecs (the kept flat positions, C order, of one leaf):

* ``full``  all positions kept (biases, unpruned kernels): no bytes.
* ``bmp``   the mask as a bitmap, ``np.packbits(bitorder="little")``.
* ``g8``    gap coding: for each kept position the number d of pruned
  positions skipped since the previous kept one, written as ⌊d/255⌋ bytes
  0xFF followed by one byte d mod 255 (so every byte < 255 ends a gap).
  Decoding is vectorized: p_i = cumsum(bytes)[i-th terminator] + i.
* a trailing ``z`` (``bmpz``, ``g8z``): that stream zlib-compressed (level 9).

Value codecs (the kept values in position order):

* ``f32`` raw float32. ``f16`` / ``bf16``: the lossy options (below).
* a trailing ``z`` (``f32z``, ...): the most significant byte of every value
  (sign and high exponent bits; weights of a layer share a few exponents, so
  it carries ~3 of its 8 bits) is split into its own plane and
  zlib-compressed; the other byte planes stay raw (they are near-random
  mantissa bits that no compressor shrinks). Still lossless.

Every tensor gets the smallest of its candidate encodings; the choice is
recorded in the header (the sizes this gives: :mod:`sparse_orl.export`).

Lossy options: ``value_dtype="float16"`` (IEEE half, round to nearest; values
beyond ±65504 become ±inf, below ~6e-8 flush to 0; relative error ≤ 2^-11)
and ``value_dtype="bfloat16"`` (the top 16 bits of float32 with round to
nearest even; relative error ≤ 2^-8, full float32 range). They apply to every
stored leaf (kernels and biases); masks and the metadata arrays stay exact,
and loading widens the values back to float32.

Corrupt or truncated files raise ``ValueError`` naming the file. The decoder
itself lives in :mod:`sparse_orl.deploy` (numpy alone, so that file can be copied
to a device by itself) and is imported here: one copy of the decoding. This module
imports numpy, the standard library, :mod:`sparse_orl.store.atomic` and
:mod:`sparse_orl.deploy` only.
"""
from __future__ import annotations

import json
import os
import zlib
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from sparse_orl.deploy import FORMAT_VERSION, MAGIC, PREAMBLE, decode_flat
from sparse_orl.store.atomic import atomic_write_bytes, flatten, unflatten

INDEX_CODECS = ("full", "bmp", "g8")
VALUE_DTYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}


# ---- stream encoders (the decoders: sparse_orl.deploy._positions / _values) ---------------
def _gap8_encode(pos: np.ndarray) -> bytes:
    d = np.diff(pos.astype(np.int64), prepend=-1) - 1
    runs = d // 255
    out = np.full(len(d) + int(runs.sum()), 255, np.uint8)
    out[np.cumsum(runs + 1) - 1] = (d % 255).astype(np.uint8)
    return out.tobytes()


def _encode_index(codec: str, pos: np.ndarray, size: int) -> bytes:
    if codec == "full":
        return b""
    if codec == "bmp":
        m = np.zeros(size, np.uint8)
        m[pos] = 1
        return np.packbits(m, bitorder="little").tobytes()
    if codec == "g8":
        return _gap8_encode(pos)
    raise ValueError(f"unknown index codec {codec!r}")


def _to_bf16_bits(x: np.ndarray) -> np.ndarray:
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
    return np.where(np.isnan(x), np.uint16(0x7FC0), r)


def _quantize(vals: np.ndarray, vcode: str) -> np.ndarray:
    """The stored little-endian array for float32 ``vals``."""
    if vcode == "f32":
        return vals.astype("<f4")
    if vcode == "f16":
        return vals.astype("<f2")
    if vcode == "bf16":
        return _to_bf16_bits(vals).astype("<u2")
    raise ValueError(f"unknown value dtype code {vcode!r}")


def _encode_values(vcode: str, q: np.ndarray, split_top: bool) -> bytes:
    if not split_top:
        return q.tobytes()
    planes = q.view(np.uint8).reshape(-1, q.dtype.itemsize)
    return zlib.compress(planes[:, -1].tobytes(), 9) + planes[:, :-1].tobytes()


def _smallest(cands: Iterable[Tuple[str, bytes]]) -> Tuple[str, bytes]:
    best = None
    for name, data in cands:  # first wins ties: uncompressed codecs are listed first
        if best is None or len(data) < len(best[1]):
            best = (name, data)
    return best


# ---- encoding ----------------------------------------------------------------------
def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(f"metadata value of type {type(o).__name__} is not JSON-serializable")


def encode_compact(
    params: Dict,
    masks: Optional[Dict] = None,
    meta: Optional[Dict] = None,
    value_dtype: str = "float32",
    index_codecs: Sequence[str] = ("bmp", "g8"),
    compress: bool = True,
) -> bytes:
    """The bytes :func:`save_compact` writes.

    ``masks`` None means all-ones. ``index_codecs`` are the candidates for
    leaves with pruned positions (leaves with all-ones masks always use
    ``full``); ``compress`` also tries the zlib variants of index and value
    streams. Each leaf gets its smallest candidate. Top-level ``np.ndarray``
    values of ``meta`` are stored raw in the payload, the rest as JSON.
    """
    if value_dtype not in VALUE_DTYPES:
        raise ValueError(f"value_dtype must be one of {tuple(VALUE_DTYPES)}, got {value_dtype!r}")
    vcode = VALUE_DTYPES[value_dtype]
    for c in index_codecs:
        if c not in ("bmp", "g8"):
            raise ValueError(f"unknown index codec {c!r} (expected 'bmp' or 'g8')")
    flat_p = flatten(params)
    flat_m = flatten(masks) if masks is not None else {}
    if masks is not None and set(flat_m) != set(flat_p):
        raise ValueError(f"masks and params differ in leaves: {sorted(set(flat_m) ^ set(flat_p))}")
    entries: List[Dict] = []
    chunks: List[bytes] = []
    for path, p in flat_p.items():
        if p.dtype != np.float32:
            raise ValueError(f"{path}: params must be float32, got {p.dtype}")
        flat = p.reshape(-1)
        if masks is None:
            keep = np.ones(flat.shape, bool)
        else:
            m = np.asarray(flat_m[path])
            if m.shape != p.shape:
                raise ValueError(f"{path}: mask shape {m.shape} != param shape {p.shape}")
            keep = m.reshape(-1) != 0
        pruned_nonzero = int(np.count_nonzero(flat[~keep]))
        if pruned_nonzero:
            raise ValueError(f"{path}: {pruned_nonzero} pruned weights are nonzero (apply the masks first)")
        pos = np.flatnonzero(keep)
        size, k = flat.size, len(pos)
        if k == size:
            icands = [("full", b"")]
        else:
            icands = []
            for c in index_codecs:
                raw = _encode_index(c, pos, size)
                icands.append((c, raw))
            if compress:
                icands += [(c + "z", zlib.compress(raw, 9)) for c, raw in list(icands)]
        icodec, ibytes = _smallest(icands)
        q = _quantize(flat[pos], vcode)
        vcands = [(vcode, _encode_values(vcode, q, False))]
        if compress and k:
            vcands.append((vcode + "z", _encode_values(vcode, q, True)))
        vcodec, vbytes = _smallest(vcands)
        entries.append({"p": path, "s": list(p.shape), "k": k, "i": icodec, "il": len(ibytes),
                        "v": vcodec, "vl": len(vbytes)})
        chunks += [ibytes, vbytes]
    arrays, jmeta = [], {}
    for key, v in (meta or {}).items():
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            if a.dtype.kind not in "biuf":
                raise ValueError(f"metadata array {key!r} has unsupported dtype {a.dtype}")
            a = a.astype(a.dtype.newbyteorder("<"))
            arrays.append({"n": str(key), "d": a.dtype.str, "s": list(a.shape), "l": a.nbytes})
            chunks.append(a.tobytes())
        else:
            jmeta[str(key)] = v
    payload = b"".join(chunks)
    header = {"crc": zlib.crc32(payload), "len": len(payload), "t": entries, "a": arrays, "m": jmeta}
    hbytes = zlib.compress(json.dumps(header, separators=(",", ":"), default=_json_default).encode(), 9)
    return PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(hbytes), zlib.crc32(hbytes)) + hbytes + payload


def save_compact(path: str, params: Dict, masks: Optional[Dict], meta: Optional[Dict] = None,
                 value_dtype: str = "float32", **kw) -> int:
    """Write ``params`` / ``masks`` / ``meta`` to ``path`` atomically; returns the file's bytes.

    ``value_dtype`` "float32" is lossless; "float16" / "bfloat16" are the
    documented lossy options (module docstring). ``kw``: see :func:`encode_compact`.
    """
    data = encode_compact(params, masks, meta, value_dtype, **kw)
    atomic_write_bytes(path, data)
    return len(data)


# ---- decoding ----------------------------------------------------------------------
def decode_compact(data: bytes, name: str = "<bytes>") -> Tuple[Dict, Dict, Dict]:
    """(params, masks, meta) from the bytes of a compact file; ``ValueError`` names ``name``."""
    params, masks, meta = decode_flat(data, name)
    return unflatten(params), unflatten(masks), meta


def load_compact(path: str) -> Tuple[Dict, Dict, Dict]:
    """(params, masks, meta) from :func:`save_compact`'s file.

    params / masks: nested dicts of float32 arrays (kept values bit-exact for
    "float32" files; pruned positions +0.0; masks 0/1 from the stored
    indices). meta: the JSON metadata plus its arrays. ``ValueError`` naming
    ``path`` if the file is corrupt or truncated.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    return decode_compact(data, path)
