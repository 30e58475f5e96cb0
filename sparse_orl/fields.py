"""Options declared once: a dataclass field that carries its help, its valid range and its flag name.

Every option of the library is a field of a frozen config dataclass, declared with :func:`option`::

    @dataclasses.dataclass(frozen=True)
    class TD3BCConfig(AlgoConfig):
        tau: float = option(0.005, "Polyak rate τ of the target networks.", low=0, high=1, low_open=True)

        def __post_init__(self):
            check_fields(self)

:func:`check_fields` normalizes and checks every option field of a config (types, ranges, choices)
with messages that name the option as a flag (``--tau must be in (0, 1], got 2.0``), so the command
line, the Python API and a sweep refuse bad values with the same words. ``launch/flags.py`` derives
one absl flag per field, :func:`sparse_orl.train` one keyword per field, and ``docs/flag_table.py``
the README's table. Standard library only.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

KINDS = ("bool", "int", "float", "str", "ints", "floats", "strs")
_SCALAR = {"bool": "bool", "int": "int", "float": "float", "str": "str"}
_TUPLE = {"int": "ints", "float": "floats", "str": "strs"}


def option(default: Any, help: str, *, flag: Optional[str] = None, low: Optional[float] = None,
           high: Optional[float] = None, low_open: bool = False, high_open: bool = False,
           choices: Optional[Sequence[str]] = None, flagged: bool = True, kind: Optional[str] = None):
    """A dataclass field that is also an option (a flag of the launchers, a keyword of the Python API).

    ``help``: one or two sentences. ``flag``: its name when it differs from the field's. ``low`` /
    ``high``: the valid range of a number (or of every number of a tuple), closed unless
    ``low_open`` / ``high_open``. ``choices``: the valid strings. ``flagged=False``: a field checked
    like an option but built by the library rather than given as a flag (e.g. a job's pruning
    methods). ``kind``: overrides the kind read from the annotation.
    """
    if isinstance(default, (list, dict, set)):
        raise TypeError("option defaults must be immutable (use a tuple)")
    md = {"help": help, "flag": flag, "low": low, "high": high, "low_open": low_open, "high_open": high_open,
          "choices": tuple(choices) if choices is not None else None, "flagged": flagged, "kind": kind}
    return dataclasses.field(default=default, metadata={"option": md})


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a config field says about itself as an option."""

    name: str  # the field's name
    flag: str  # the flag / keyword name
    kind: str  # one of KINDS
    optional: bool  # None is a valid value
    default: Any
    help: str
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    choices: Optional[Tuple[str, ...]] = None
    flagged: bool = True

    def range_text(self) -> str:
        """"in (0, 1]", ">= 1", "one of a, b" or ""."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {_num(self.high)}"
        return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def _kind_of(annotation: str) -> Tuple[str, bool]:
    """(kind, optional) of a field annotation written as a string ("Optional[int]", "Tuple[int, ...]")."""
    t = annotation.replace(" ", "")
    optional = False
    m = re.fullmatch(r"Optional\[(.*)\]", t)
    if m:
        t, optional = m.group(1), True
    if t in _SCALAR:
        return _SCALAR[t], optional
    m = re.fullmatch(r"Tuple\[(\w+),\.\.\.\]", t)
    if m and m.group(1) in _TUPLE:
        return _TUPLE[m.group(1)], optional
    raise TypeError(f"an option field cannot have the type {annotation!r}")


def specs(cls_or_obj) -> Tuple[Spec, ...]:
    """The option specs of a config dataclass (fields declared with :func:`option`), in field order."""
    out = []
    for f in dataclasses.fields(cls_or_obj):
        md = f.metadata.get("option")
        if md is None:
            continue
        # a string in a module with ``from __future__ import annotations``, else a type (int) or a typing form
        # (typing.Tuple[int, ...], written as its text without the module)
        kind, optional = _kind_of(f.type if isinstance(f.type, str) else f.type.__name__ if isinstance(f.type, type)
                                  else str(f.type).replace("typing.", ""))
        kind = md["kind"] or kind
        out.append(Spec(f.name, md["flag"] or f.name, kind, optional or f.default is None, f.default, md["help"],
                        md["low"], md["high"], md["low_open"], md["high_open"], md["choices"], md["flagged"]))
    return tuple(out)


def iter_specs(classes: Sequence[type]) -> Iterator[Tuple[type, Spec]]:
    for cls in classes:
        for s in specs(cls):
            yield cls, s


# ---- values ---------------------------------------------------------------------------------
def _bad(spec: Spec, what: str, value) -> ValueError:
    return ValueError(f"--{spec.flag} must be {what}, got {value!r}")


def _scalar(spec: Spec, kind: str, v):
    if kind == "bool":
        if isinstance(v, bool) or (hasattr(v, "dtype") and getattr(v, "dtype", None) is not None
                                   and str(v.dtype) == "bool" and getattr(v, "ndim", 1) == 0):
            return bool(v)
        raise _bad(spec, "True or False", v)
    if kind == "int":
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            if isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v).is_integer() and math.isfinite(v):
                return int(v)  # 1e5 and np.float64(20.0) are whole numbers
            raise _bad(spec, "an integer", v)
        return int(v)
    if kind == "float":
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise _bad(spec, "a number", v)
        return float(_item(v)) if hasattr(v, "dtype") else float(v)
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if not isinstance(v, str):
        raise _bad(spec, "a string", v)
    return v


def _item(x):
    """A numpy / jax scalar as a Python value; a float32 (or narrower) one as the number it prints as:
    ``np.float32(0.9)`` is 0.9, not its binary expansion 0.8999999761581421."""
    dtype = getattr(x, "dtype", None)
    if getattr(dtype, "kind", "") == "f" and getattr(dtype, "itemsize", 8) < 8:
        return float(str(x))
    return x.item() if hasattr(x, "item") else x


def normalize(spec: Spec, value):
    """``value`` as the field's kind: numpy scalars and arrays, lists and paths accepted; a lone number
    for a tuple field becomes a 1-tuple. Raises ``ValueError`` naming the flag."""
    if value is None:
        if spec.optional:
            return None
        words = {"bool": "True or False", "int": "an integer", "float": "a number", "str": "a string",
                 "ints": "a list of integers", "floats": "a list of numbers", "strs": "a list of names"}[spec.kind]
        raise _bad(spec, f"{words} {spec.range_text()}".strip(), value)
    if spec.kind in _SCALAR:
        if hasattr(value, "ndim") and getattr(value, "ndim") == 0 and hasattr(value, "item"):
            value = _item(value)
        return _scalar(spec, spec.kind, value)
    elem = {"ints": "int", "floats": "float", "strs": "str"}[spec.kind]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        ndim = getattr(value, "ndim", None)
        value = [_item(value)] if ndim == 0 else [_item(x) for x in value] if ndim == 1 else value.tolist()
    if isinstance(value, (str, os.PathLike)) or not isinstance(value, Sequence):
        value = [value]
    return tuple(_scalar(spec, elem, v) for v in value)


def _in_range(spec: Spec, x: float) -> bool:
    if isinstance(x, float) and not math.isfinite(x):
        return False
    if spec.low is not None and (x < spec.low or (spec.low_open and x == spec.low)):
        return False
    if spec.high is not None and (x > spec.high or (spec.high_open and x == spec.high)):
        return False
    return True


def check_value(spec: Spec, value):
    """The normalized ``value`` of ``spec``, or ``ValueError`` in one line naming the flag."""
    value = normalize(spec, value)
    if value is None:
        return value
    items = value if isinstance(value, tuple) else (value,)
    for x in items:
        if spec.choices is not None and x not in spec.choices:
            raise ValueError(f"--{spec.flag} must be one of {', '.join(spec.choices)}, got {x!r}")
        if spec.kind in ("int", "float", "ints", "floats"):
            if not _in_range(spec, x):
                what = spec.range_text() or "a finite number"
                if spec.low is not None or spec.high is not None:
                    what = ("a finite number " if spec.kind in ("float", "floats") else "") + what
                raise ValueError(f"--{spec.flag} must be {what}, got {x!r}"
                                 + (f" (in {list(value)})" if isinstance(value, tuple) and len(value) > 1 else ""))
    return value


def check_fields(obj) -> None:
    """Normalize and check every option field of the frozen dataclass ``obj`` in place."""
    for s in specs(obj):
        object.__setattr__(obj, s.name, check_value(s, getattr(obj, s.name)))


def field_values(obj) -> Dict[str, Any]:
    """{field name: value} of every option field of ``obj``."""
    return {s.name: getattr(obj, s.name) for s in specs(obj)}
