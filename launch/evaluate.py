"""Evaluate the final params of a finished workdir again (one program or several, e.g. with the narrow control).

    python -m launch.evaluate --workdir=runs/main --episodes=10

Writes ``evaluate.json`` in the workdir and prints one line per run.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from absl import app, logging

from launch import flags as flags_lib
from sparse_orl.fields import check_fields, option


@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
    workdir: Optional[str] = option(None, "A finished launch.train workdir.")
    episodes: int = option(10, "Episodes per run.", low=1)
    seed: int = option(1_000_003, "Seed of the evaluation episodes (different from training's).", low=0,
                       high=2**32 - 1)
    max_episode_steps: Optional[int] = option(None, "Cap episode length (default: the env's limit).", low=1)

    def __post_init__(self):
        check_fields(self)
        if not self.workdir:
            raise ValueError("--workdir is required")


OPTIONS = flags_lib.class_options(EvaluateOptions)
flags_lib.define(OPTIONS)


def main(argv):
    if not flags_lib.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        flags_lib.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    from sparse_orl.job.evaluation import evaluate_workdir
    from sparse_orl.store.atomic import atomic_write_json

    try:
        o = flags_lib.build(EvaluateOptions, OPTIONS)
        result = evaluate_workdir(o.workdir, o.episodes, o.seed, o.max_episode_steps)
    except (ValueError, FileNotFoundError) as e:
        flags_lib.fail(str(e))
    atomic_write_json(os.path.join(o.workdir, "evaluate.json"), result)
    for r in result["runs"]:
        norm = "n/a" if r["normalized_score"] is None else f"{r['normalized_score']:.1f}"
        flag = (f"  DIVERGED in training at step {r['nan_step']} (params frozen before it; not a result)"
                if r.get("status") == "diverged" else "")
        print(f"{r['pruner']:>12s} seed {r['seed']:>3d} sparsity {r['sparsity']:.3f}: "
              f"return {r['return']:.1f} normalized {norm}{flag}")


if __name__ == "__main__":
    app.run(main, flags_parser=flags_lib.parse_flags)
