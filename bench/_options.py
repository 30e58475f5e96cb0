"""The benchmarks' command lines, derived from an options dataclass (``sparse_orl.fields.option`` fields)
like every other option of the project: ``--name=value`` or ``--name value``, ``--flag`` / ``--noflag``
for booleans, comma lists for tuple fields, ``--help`` from the fields' help. Standard library only
(``sparse_orl.fields`` imports nothing else), so the PyTorch worker of ``vs_pytorch.py`` can use it."""
from __future__ import annotations

import sys
from typing import Sequence, Type, TypeVar

from sparse_orl.fields import check_value, specs

T = TypeVar("T")
_CAST = {"int": int, "float": float, "str": str, "ints": int, "floats": float, "strs": str}


def usage(cls) -> str:
    lines = [f"options of {sys.argv[0]}:"]
    for s in specs(cls):
        default = ",".join(map(str, s.default)) if isinstance(s.default, tuple) else s.default
        lines.append(f"  --{s.flag} (default {default}): {s.help}")
    return "\n".join(lines)


def parse(cls: Type[T], argv: Sequence[str]) -> T:
    """An instance of the options dataclass ``cls`` from ``argv``; a bad option exits with one line."""
    by_flag = {s.flag: s for s in specs(cls)}
    given, args = {}, list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            print(usage(cls))
            sys.exit(0)
        if not arg.startswith("--"):
            sys.exit(f"error: unexpected argument {arg!r}\n{usage(cls)}")
        name, eq, text = arg[2:].partition("=")
        if name not in by_flag and name.startswith("no") and by_flag.get(name[2:]) and by_flag[name[2:]].kind == "bool":
            given[name[2:]] = False
            continue
        if name not in by_flag:
            sys.exit(f"error: unknown option --{name}\n{usage(cls)}")
        s = by_flag[name]
        if s.kind == "bool" and not eq:
            given[name] = True
            continue
        if not eq:
            if not args:
                sys.exit(f"error: --{name} needs a value")
            text = args.pop(0)
        try:
            if s.kind in ("ints", "floats", "strs"):
                value = tuple(_CAST[s.kind](x) for x in text.split(",") if x.strip())
            elif s.kind == "bool":
                value = text.lower() in ("1", "true", "yes")
            else:
                value = _CAST[s.kind](text)
            given[name] = check_value(s, value)
        except ValueError as e:
            sys.exit(f"error: --{name}: {e}")
    return cls(**{by_flag[k].name: v for k, v in given.items()})
