"""Lossless compact files of pruned networks, and the size accounting of Table 1.

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
recorded in the header. Measured on HalfCheetah shapes (obs 17, act 6,
latent 12; actor/critic 400-300, VAE 750-750) with random masks of exact
count and U(±1/√fan_in) weights, bytes per kept weight at 95% sparsity:
bitmap 2.5, g8 1.0, bitmap+zlib 0.90, g8+zlib 0.74 (mask entropy 0.72);
values f32 4.0, f32z 3.40. Whole files (headers included) vs dense float32
for actor / critic (Q1+Q2) / VAE at 95%: torch COO 3.67 / 3.68 / 3.87x,
bitmap+f32 11.55 / 11.57 / 11.95x, g8+f32 14.72 / 14.75 / 15.40x, chosen
(g8z indices + f32z values) 17.52 / 17.60 / 18.55x; at 90%: COO 1.9x, chosen
9.4-9.7x; at 99%: COO 13.6-16.9x, chosen 61-75x (:func:`size_table`). The
chosen format beats the ~17x bound of "random 5% mask + incompressible
float32" because the values' sign/exponent byte is compressible. A trained
SNIP run (HalfCheetah BC VAE, 90%) gave 10.07x.

Lossy options: ``value_dtype="float16"`` (IEEE half, round to nearest; values
beyond ±65504 become ±inf, below ~6e-8 flush to 0; relative error ≤ 2^-11)
and ``value_dtype="bfloat16"`` (the top 16 bits of float32 with round to
nearest even; relative error ≤ 2^-8, full float32 range). They apply to every
stored leaf (kernels and biases); masks and the metadata arrays stay exact,
and loading widens the values back to float32.

Corrupt or truncated files raise ``ValueError`` naming the file. The
standalone loader in :mod:`sparse_orl.deploy` re-implements the decoding with
numpy alone so the file can be copied to a device by itself.
"""
from __future__ import annotations

import json
import os
import struct
import zlib
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from sparse_orl.io_utils import atomic_write_bytes

MAGIC = b"\x89SOC"
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct("<4sBII")  # magic, version, header length, header crc32
INDEX_CODECS = ("full", "bmp", "g8")
VALUE_DTYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}
_ITEMSIZE = {"f32": 4, "f16": 2, "bf16": 2}

# torch.save of ``{name: tensor.to_sparse()}`` (the paper's COO files), measured
# with torch 2.13.0 (CPU) on HalfCheetah shapes with random exact-count masks:
# file bytes - (20 B per kept weight + 12 B per bias element) = 4143 B (actor,
# 6 tensors), 7083 B (critic Q1+Q2, 12 tensors), 7939 B (VAE, 14 tensors),
# steady within ±100 B from 0% to 99% sparsity. A least-squares fit gives
# 1203 B per file + 490 B per sparse tensor (two storages, each a zip record
# padded to 64 B, plus its pickle). Dense torch.save: ~1381 B + 204 B per tensor.
# The paper's Table 1 (older torch) implies ~300 B per tensor; either choice
# reproduces its 95% COO sizes 0.14099 / 0.2768 / 1.2122 MB within 2.2%.
TORCH_FILE_OVERHEAD = 1203
TORCH_SPARSE_TENSOR_OVERHEAD = 490
COO_BYTES_PER_KEPT_WEIGHT = 20  # two int64 indices + a float32 value
COO_BYTES_PER_DENSE_ELEMENT = 12  # a 1-D tensor's to_sparse(): one int64 index + a float32 value


# ---- trees -------------------------------------------------------------------------
def flatten(tree: Any, prefix: str = "") -> Dict[str, np.ndarray]:
    """{"a/b/kernel": leaf} in insertion order (a lone array maps to "")."""
    out: Dict[str, np.ndarray] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            k = str(k)
            if "/" in k or not k:
                raise ValueError(f"param tree keys must be non-empty and contain no '/': {k!r}")
            out.update(flatten(v, f"{prefix}/{k}" if prefix else k))
    else:
        out[prefix] = np.asarray(tree)
    return out


def unflatten(flat: Dict[str, Any]) -> Dict:
    root: Dict = {}
    for key, value in flat.items():
        node = root
        parts = key.split("/")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return root


# ---- codecs ------------------------------------------------------------------------
def _gap8_encode(pos: np.ndarray) -> bytes:
    d = np.diff(pos.astype(np.int64), prepend=-1) - 1
    runs = d // 255
    out = np.full(len(d) + int(runs.sum()), 255, np.uint8)
    out[np.cumsum(runs + 1) - 1] = (d % 255).astype(np.uint8)
    return out.tobytes()


def _gap8_decode(buf: bytes, k: int, size: int) -> np.ndarray:
    b = np.frombuffer(buf, np.uint8)
    ends = np.flatnonzero(b != 255)
    if len(ends) != k or (len(b) and b[-1] == 255):
        raise ValueError(f"gap stream holds {len(ends)} positions, header says {k}")
    pos = np.cumsum(b, dtype=np.int64)[ends] + np.arange(k, dtype=np.int64)
    if k and pos[-1] >= size:
        raise ValueError(f"gap stream points past the tensor ({pos[-1]} >= {size})")
    return pos


def _bitmap_decode(buf: bytes, k: int, size: int) -> np.ndarray:
    if len(buf) != (size + 7) // 8:
        raise ValueError(f"bitmap has {len(buf)} bytes for {size} positions")
    bits = np.unpackbits(np.frombuffer(buf, np.uint8), count=size, bitorder="little")
    pos = np.flatnonzero(bits)
    if len(pos) != k:
        raise ValueError(f"bitmap holds {len(pos)} positions, header says {k}")
    return pos


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


def _decode_index(codec: str, buf: bytes, k: int, size: int) -> np.ndarray:
    if codec.endswith("z"):
        buf = zlib.decompress(buf)
        codec = codec[:-1]
    if codec == "full":
        if buf or k != size:
            raise ValueError(f"'full' tensor with {k} of {size} kept")
        return np.arange(size, dtype=np.int64)
    if codec == "bmp":
        return _bitmap_decode(buf, k, size)
    if codec == "g8":
        return _gap8_decode(buf, k, size)
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


def _decode_values(codec: str, buf: bytes, k: int) -> np.ndarray:
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
    return _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(hbytes), zlib.crc32(hbytes)) + hbytes + payload


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
    try:
        return _decode(data)
    except ValueError as e:
        raise ValueError(f"compact file {name} is corrupt or truncated: {e}") from None
    except (zlib.error, KeyError, TypeError, IndexError, struct.error, UnicodeDecodeError) as e:
        raise ValueError(f"compact file {name} is corrupt or truncated: {type(e).__name__}: {e}") from None


def _decode(data: bytes) -> Tuple[Dict, Dict, Dict]:
    if len(data) < _PREAMBLE.size:
        raise ValueError(f"{len(data)} bytes, shorter than the {_PREAMBLE.size}-byte preamble")
    magic, version, hlen, hcrc = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"bad magic {magic!r} (not a sparse_orl compact file)")
    if version != FORMAT_VERSION:
        raise ValueError(f"format version {version}, this reader knows {FORMAT_VERSION}")
    hbytes = data[_PREAMBLE.size:_PREAMBLE.size + hlen]
    if len(hbytes) != hlen or zlib.crc32(hbytes) != hcrc:
        raise ValueError("header CRC32 mismatch or header cut short")
    header = json.loads(zlib.decompress(hbytes).decode())
    payload = data[_PREAMBLE.size + hlen:]
    if len(payload) != header["len"]:
        raise ValueError(f"payload has {len(payload)} bytes, header says {header['len']}")
    if zlib.crc32(payload) != header["crc"]:
        raise ValueError("payload CRC32 mismatch")
    off = 0

    def take(n):
        nonlocal off
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
        pos = _decode_index(e["i"], take(e["il"]), k, size)
        vals = _decode_values(e["v"], take(e["vl"]), k)
        p = np.zeros(size, np.float32)
        p[pos] = vals
        m = np.zeros(size, np.float32)
        m[pos] = 1.0
        params[e["p"]], masks[e["p"]] = p.reshape(shape), m.reshape(shape)
    meta = dict(header["m"])
    for a in header["a"]:
        dt = np.dtype(a["d"])
        arr = np.frombuffer(take(a["l"]), dt).reshape(a["s"])
        meta[a["n"]] = arr.astype(dt.newbyteorder("="))
    if off != len(payload):
        raise ValueError(f"{len(payload) - off} unread payload bytes")
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


# ---- size accounting ---------------------------------------------------------------
def dense_nbytes(params: Dict) -> int:
    """Dense float32: 4 B per parameter, no container overhead."""
    return 4 * sum(int(np.size(x)) for x in flatten(params).values())


def torch_coo_nbytes(params: Dict, masks: Optional[Dict],
                     tensor_overhead: int = TORCH_SPARSE_TENSOR_OVERHEAD,
                     file_overhead: int = TORCH_FILE_OVERHEAD) -> int:
    """The paper's format: ``torch.save`` of every parameter's ``to_sparse()``.

    20 B per kept weight of a 2-D leaf, 12 B per element of other leaves
    (biases are never pruned; their COO keeps every element), plus the
    measured torch.save overheads (constants above).
    """
    flat_m = flatten(masks) if masks is not None else {}
    total = file_overhead
    for path, p in flatten(params).items():
        if np.ndim(p) >= 2:
            k = int(np.count_nonzero(flat_m[path])) if masks is not None else int(np.size(p))
            total += COO_BYTES_PER_KEPT_WEIGHT * k
        else:
            total += COO_BYTES_PER_DENSE_ELEMENT * int(np.size(p))
        total += tensor_overhead
    return total


def size_table(params: Dict, masks: Optional[Dict], value_dtype: str = "float32") -> Dict[str, Dict]:
    """Per top-level network: bytes and ratios (dense float32 / format) of each format.

    Every compact size is a whole file (preamble and header included) holding
    that network alone, ``{net: params[net]}``. ``bitmap`` = bitmap indices + raw values, ``gap8`` =
    uint8 gap indices + raw values (no zlib), ``compact`` = the automatic
    choice that :func:`save_compact` makes.
    """
    out = {}
    for net, p in params.items():
        m = masks[net] if masks is not None else None
        tree_p, tree_m = {net: p}, ({net: m} if m is not None else None)  # as save_compact({net: ...}) writes
        flat_p = flatten(p)
        n_w = sum(x.size for x in flat_p.values() if x.ndim >= 2)
        kept = (sum(int(np.count_nonzero(x)) for x, q in zip(flatten(m).values(), flat_p.values()) if q.ndim >= 2)
                if m is not None else n_w)
        row = {"params": sum(x.size for x in flat_p.values()), "weights": n_w, "kept": kept,
               "sparsity": 1.0 - kept / max(n_w, 1), "dense": dense_nbytes(p), "coo": torch_coo_nbytes(p, m),
               "bitmap": len(encode_compact(tree_p, tree_m, None, value_dtype, ("bmp",), compress=False)),
               "gap8": len(encode_compact(tree_p, tree_m, None, value_dtype, ("g8",), compress=False)),
               "compact": len(encode_compact(tree_p, tree_m, None, value_dtype))}
        for f in ("coo", "bitmap", "gap8", "compact"):
            row[f + "_ratio"] = row["dense"] / row[f]
        out[net] = row
    return out


# ---- a trained run -> one deployable file -------------------------------------------
def acting_networks(agent_config: Dict) -> Tuple[str, ...]:
    """Param paths a policy needs to act: BC the VAE; BCQ the actor, critic Q1 and VAE."""
    return ("vae",) if agent_config["algo"] == "bc" else ("actor", "critic/q1", "vae")


def export_run(workdir: str, run_index: int, out_path: str, include_q2: bool = False,
               vae_decoder_only: bool = False, value_dtype: str = "float32") -> int:
    """Write run ``run_index`` of ``workdir`` (``checkpoint.load_final``) as one compact file.

    Holds the networks needed to act (BC: VAE; BCQ: actor, critic Q1 and, with
    ``include_q2``, Q2; VAE), their masks, the agent config (with obs_dim,
    act_dim, max_action, env_id), the run's seed / sparsity / pruner and the
    observation statistics. ``vae_decoder_only`` drops the VAE encoder, which
    acting never uses. Returns the file's bytes; :class:`sparse_orl.deploy.Policy`
    loads it.
    """
    from sparse_orl.checkpoint import load_final

    config, runs = load_final(workdir)
    if not 0 <= run_index < len(runs):
        raise IndexError(f"run {run_index} out of range: {workdir} holds {len(runs)} runs")
    run = runs[run_index]
    params, masks = {}, {}
    wanted = list(acting_networks(config)) + (["critic/q2"] if include_q2 and config["algo"] != "bc" else [])
    for path in wanted:
        src_p, src_m, dst_p, dst_m = run["params"], run["masks"], params, masks
        parts = path.split("/")
        for part in parts[:-1]:
            src_p, src_m = src_p[part], src_m[part]
            dst_p, dst_m = dst_p.setdefault(part, {}), dst_m.setdefault(part, {})
        leaf_p, leaf_m = src_p[parts[-1]], src_m[parts[-1]]
        if parts[-1] == "vae" and vae_decoder_only:
            leaf_p = {k: v for k, v in leaf_p.items() if k.startswith("d")}
            leaf_m = {k: leaf_m[k] for k in leaf_p}
        to32 = lambda t: {k: to32(v) for k, v in t.items()} if isinstance(t, dict) else np.asarray(t, np.float32)
        dst_p[parts[-1]], dst_m[parts[-1]] = to32(leaf_p), to32(leaf_m)
    meta = {"kind": "sparse_orl.policy", "config": config,
            "run": {k: v for k, v in run.items() if k not in ("params", "masks", "obs_mean", "obs_std")},
            "obs_mean": np.asarray(run["obs_mean"], np.float32), "obs_std": np.asarray(run["obs_std"], np.float32)}
    return save_compact(out_path, params, masks, meta, value_dtype)
