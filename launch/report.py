"""Figures and a Markdown report from a sweep (``launch.sweep``) or a ``launch.train`` workdir.

Example::

    python -m launch.report --workdir=runs/sweep            # -> runs/sweep/report/*.png, report.md

Also prints the score table of every configuration.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from absl import app

from launch import flags as flags_lib
from sparse_orl.fields import check_fields, option


@dataclasses.dataclass(frozen=True)
class ReportOptions:
    workdir: Tuple[str, ...] = option((), "A sweep workdir (sweep.json) or a launch.train workdir (summary.json); "
                                      "a comma list merges several into one report (needs --out).")
    out: Optional[str] = option(None, "Output folder (default: <workdir>/report).")
    layer_sparsity: float = option(0.95, "Sparsity level of the weights-per-layer figure (nearest level if "
                                   "absent).", low=0, high=1, high_open=True)
    table_sparsity: float = option(0.95, "Sparsity level of Table 1 (nearest level if absent).", low=0, high=1,
                                   high_open=True)

    def __post_init__(self):
        check_fields(self)
        if not self.workdir:
            raise ValueError("--workdir is required")


OPTIONS = flags_lib.class_options(ReportOptions)
flags_lib.define(OPTIONS)


def main(argv):
    if len(argv) > 1:
        flags_lib.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    from sparse_orl.report.make import make_report

    try:
        o = flags_lib.build(ReportOptions, OPTIONS)
        out = make_report(list(o.workdir), o.out, o.layer_sparsity, o.table_sparsity)
    except (ValueError, FileNotFoundError) as e:
        flags_lib.fail(str(e))
    print("\n".join(out["table"]))
    for p in out["pngs"]:
        print(p)


if __name__ == "__main__":
    app.run(main, flags_parser=flags_lib.parse_flags)
