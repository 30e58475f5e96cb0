"""Figures and a Markdown report from a sweep (``launch.sweep``) or a ``launch.train`` workdir.

Example::

    python -m launch.report --workdir=runs/sweep            # -> runs/sweep/report/*.png, report.md
"""
from __future__ import annotations

from absl import app, flags

from launch import common
from sparse_orl import reporting

FLAGS = flags.FLAGS
flags.DEFINE_list("workdir", None, "A sweep workdir (sweep.json) or a launch.train workdir (summary.json); a comma list merges several into one report (needs --out).")
flags.DEFINE_string("out", None, "Output folder (default: <workdir>/report).")
flags.DEFINE_float("layer_sparsity", 0.95, "Sparsity level of the weights-per-layer figure (nearest level if absent).")
flags.DEFINE_float("table_sparsity", 0.95, "Sparsity level of Table 1 (nearest level if absent).")


def main(argv):
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.workdir:
        common.fail("--workdir is required")
    try:
        out = reporting.make_report(FLAGS.workdir, FLAGS.out, FLAGS.layer_sparsity, FLAGS.table_sparsity)
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))
    for p in out["pngs"]:
        print(p)


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
