"""Small text formatters shared by the library: durations, byte counts, file-name slugs.

Standard library only.
"""
from __future__ import annotations

import re


def fmt_time(seconds: float, clock: bool = False) -> str:
    """A duration as text.

    Default (estimates): "4.2s" under 10 s, else rounded to the second: "3m07s",
    "1h02m05s", "2d03h04m". ``clock=True`` (progress lines, e.g. an ETA): whole
    seconds, truncated, never days or tenths: "0m04s", "1h02m05s", "50h00m00s".
    """
    if clock:
        seconds = int(max(seconds, 0))
        h, rem = divmod(seconds, 3600)
        m, s = divmod(rem, 60)
        return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
    if seconds < 10:
        return f"{max(seconds, 0):.1f}s"
    seconds = int(round(seconds))
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d{h:02d}h{m:02d}m"
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def fmt_bytes(n: float) -> str:
    """Decimal units, one decimal: "1.5 GB", "12.0 MB", "3.2 KB", "512 B"."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def slug(text, default: str = "") -> str:
    """``text`` as a file-name piece: runs of characters other than ``A-Za-z0-9.-`` become "-",
    no leading / trailing "-", at most 60 characters; ``default`` if nothing is left."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", str(text)).strip("-")[:60] or default
