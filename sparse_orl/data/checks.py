"""Checks of a dataset's raw arrays before they become ``Transitions``: shapes, dtypes, finiteness, flags.

Every loader (D4RL .hdf5 files, Minari datasets) runs each array it reads through :func:`check_array`
before any cast or reshape, so a bad file stops the job with one ``ValueError`` line naming the file and
the field (never an ``IndexError`` from a reshape, never a NaN terminal silently read as "done").
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

REAL, FLAG = "real", "flag"  # kinds: numbers (int or float, finite); 0/1 flags (bool, int or float)


def _shape_text(shape: Sequence[Optional[int]], names: Sequence[str]) -> str:
    return "(" + ", ".join(str(d) if d is not None else n for d, n in zip(shape, names)) + ("," if len(shape) == 1
                                                                                            else "") + ")"


def check_array(where: str, field: str, arr, shape: Tuple[Optional[int], ...], kind: str = REAL,
                names: Sequence[str] = ("N", "dim"), what: str = "") -> np.ndarray:
    """``arr`` as a numpy array, or ``ValueError`` "<where>: field '<field>' ..." in one line.

    ``shape``: the expected shape, ``None`` for a dimension of any size >= 1 (its name in the
    message from ``names``); ``kind``: ``REAL`` (integer or floating, every value finite) or ``FLAG``
    (bool, integer or floating, every value 0 or 1); ``what`` says what a row is ("one per step").
    """
    a = np.asarray(arr)
    dt = a.dtype
    head = f"{where}: field {field!r}"
    numeric = np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)
    if not (numeric or (kind == FLAG and dt == np.bool_)):
        allowed = "bool or real numbers (0/1)" if kind == FLAG else "real numbers (integer or floating point)"
        raise ValueError(f"{head} has dtype {dt}: it must hold {allowed}")
    want = _shape_text(shape, names)
    hint = f" ({what})" if what else ""
    if a.ndim != len(shape):
        raise ValueError(f"{head} has shape {a.shape}, expected {want}: {len(shape)}-D{hint}")
    for axis, (got, exp) in enumerate(zip(a.shape, shape)):
        if (exp is None and got < 1) or (exp is not None and got != exp):
            raise ValueError(f"{head} has shape {a.shape}, expected {want}{hint}")
    if np.issubdtype(dt, np.floating):
        finite = np.isfinite(a)
        if not finite.all():
            n_nan = int(np.isnan(a).sum())
            n_inf = a.size - int(finite.sum()) - n_nan
            parts = [f"{n} {k}" for n, k in ((n_nan, "NaN"), (n_inf, "inf")) if n]
            first = np.unravel_index(int(np.argmin(finite.reshape(-1))), a.shape)
            raise ValueError(f"{head} has {' and '.join(parts)} value(s) of {a.size:,} (first at index "
                             f"{tuple(int(i) for i in first) if a.ndim > 1 else int(first[0])}): a dataset must "
                             "be finite everywhere")
    if kind == FLAG and dt != np.bool_:
        bad = (a != 0) & (a != 1)
        if bad.any():
            vals = np.unique(a[bad])
            shown = ", ".join(f"{v:g}" if np.issubdtype(dt, np.floating) else str(v) for v in vals[:3])
            raise ValueError(f"{head} has {int(bad.sum()):,} value(s) other than 0 and 1 (e.g. {shown}"
                             f"{', ...' if vals.size > 3 else ''}): it is a flag, 0 or 1 (or bool)")
    return a
