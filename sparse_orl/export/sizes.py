"""The size accounting of Table 1: bytes of a pruned network stored dense, as torch COO, and in the
project's compact file.

The file format (a header of per-tensor codecs, then index and value streams) is
:mod:`sparse_orl.export.codec`; its names are re-exported here.

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

Corrupt or truncated files raise ``ValueError`` naming the file. The standalone
loader :mod:`sparse_orl.deploy` (numpy alone) holds the decoder, so a file can be
copied to a device with ``deploy.py`` by itself.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from sparse_orl.export.codec import encode_compact
from sparse_orl.store.atomic import flatten


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
