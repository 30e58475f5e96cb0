"""Evaluate the final params of a finished ``launch.train`` workdir again.

    python -m launch.evaluate --workdir=runs/bc_vae_snip --episodes=10

Writes ``evaluate.json`` in the workdir and prints one line per run.
"""
from __future__ import annotations

import os

from absl import app, flags, logging

from launch import common
from sparse_orl.evaluation import evaluate_workdir
from sparse_orl.io_utils import atomic_write_json

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A finished launch.train workdir.")
flags.DEFINE_integer("episodes", 10, "Episodes per run.")
flags.DEFINE_integer("seed", 1_000_003, "Seed of the evaluation episodes (different from training's).")
flags.DEFINE_integer("max_episode_steps", None, "Cap episode length (default: the env's limit).")


def main(argv):
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    try:
        if not FLAGS.workdir:
            raise ValueError("--workdir is required")
        result = evaluate_workdir(FLAGS.workdir, FLAGS.episodes, FLAGS.seed, FLAGS.max_episode_steps)
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))
    atomic_write_json(os.path.join(FLAGS.workdir, "evaluate.json"), result)
    for r in result["runs"]:
        norm = "n/a" if r["normalized_score"] is None else f"{r['normalized_score']:.1f}"
        flag = (f"  DIVERGED in training at step {r['nan_step']} (params frozen before it; not a result)"
                if r.get("status") == "diverged" else "")
        print(f"{r['pruner']:>10s} seed {r['seed']:>3d} sparsity {r['sparsity']:.3f}: "
              f"return {r['return']:.1f} normalized {norm}{flag}")


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
