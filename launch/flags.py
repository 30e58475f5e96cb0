"""absl flags derived from the library's option fields, and the launchers' one-line errors.

Every flag is a field of a config dataclass (:func:`sparse_orl.fields.option`): :func:`define`
makes one absl flag per :class:`sparse_orl.config.Option` (its kind, default and help come from
the field), and :func:`given` hands the library only the flags that were given, as typed values
(a comma list of numbers becomes a tuple of numbers), exactly what :func:`sparse_orl.train`'s
keywords are. The library never reads flags.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Sequence

from absl import flags

from sparse_orl.config import Option
from sparse_orl.fields import specs

FLAGS = flags.FLAGS
flags.disclaim_key_flags()  # flags defined here belong to the launcher that asks: its --help lists them
_LIST_ELEMENT = {"ints": (int, "integers"), "floats": (float, "numbers"), "strs": (str, "names")}


def class_options(cls, group: str = "") -> tuple:
    """The options of one config dataclass (a launcher's own, e.g. its output path)."""
    return tuple(Option(s, (cls,), group) for s in specs(cls) if s.flagged)


def define(options: Sequence[Option]) -> None:
    """One absl flag per option (a flag already defined by another option list is left as it is)."""
    for o in options:
        if o.name in FLAGS:
            continue
        help_ = o.help + (f" One of: {', '.join(o.spec.choices)}." if o.spec.choices else "")
        default = o.default
        if o.spec.kind in _LIST_ELEMENT:
            flags.DEFINE_list(o.name, None if default is None else [str(x) for x in default], help_)
        elif o.spec.kind == "bool":
            flags.DEFINE_bool(o.name, default, help_)
        elif o.spec.kind == "int":
            flags.DEFINE_integer(o.name, default, help_)
        elif o.spec.kind == "float":
            flags.DEFINE_float(o.name, default, help_)
        else:
            flags.DEFINE_string(o.name, default, help_)


def given(options: Sequence[Option]) -> Dict[str, Any]:
    """{flag: typed value} of the options given on the command line (lists parsed into numbers)."""
    out = {}
    for o in options:
        if not FLAGS[o.name].present:
            continue
        value = FLAGS[o.name].value
        if o.spec.kind in _LIST_ELEMENT and value is not None:
            cast, words = _LIST_ELEMENT[o.spec.kind]
            items = [str(v).strip() for v in value if str(v).strip()]
            try:
                value = tuple(cast(v) for v in items)
            except ValueError:
                fail(f"--{o.name} must be a comma list of {words}, got {','.join(value)!r}")
        out[o.name] = value
    return out


def build(cls, options: Sequence[Option]):
    """An instance of the config dataclass ``cls`` from the flags of ``options`` it owns."""
    names = {s.flag: s.name for s in specs(cls)}
    return cls(**{names[k]: v for k, v in given(options).items() if k in names})


def parse_flags(argv):
    """absl's flag parsing, but a bad flag value is one ``error: ...`` line and exit status 2
    (absl itself prints a FATAL line and exits 1). Pass as ``app.run(main, flags_parser=parse_flags)``."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        fail(str(e))


def fail(message: str) -> None:
    """One clear line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
