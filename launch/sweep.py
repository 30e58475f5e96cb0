"""A resumable sweep over algos x pruners x sparsity levels x datasets x seeds.

Example (the CPU-sized sweep of the README)::

    MINARI_DATASETS_PATH=../shared/datasets python -m launch.sweep \
        --algos=bc --bc_vae_only --pruners=none,snip,grasp,random --sparsities=0.5,0.9,0.95,0.99 \
        --seeds=0,1,2 --datasets=mujoco/halfcheetah/expert-v0 --steps=20000 --workdir=runs/sweep

Add ``--dry_run`` to print the plan (programs, runs, estimated time and memory)
first. Split over jobs with ``--num_shards=N --shard_index=i`` (same workdir).
Re-running the same command resumes; a different grid on the same workdir is
refused. Results: ``<workdir>/results.csv`` and ``results.jsonl``.
"""
from __future__ import annotations

import os
import shlex
import sys
import time

from absl import app, flags, logging

from launch import common
from sparse_orl import sweep as sweep_lib
from sparse_orl.sweep import options as sweep_options
from sparse_orl.checkpoint import CheckpointError
from sparse_orl.interrupts import Interrupted

FLAGS = flags.FLAGS
common.define_agent_flags()
common.define_prune_flags()
common.define_distributed_flags()
common.define_cpu_flags()
flags.adopt_module_key_flags(common)  # --help lists the shared sparse_orl flags too
common.define_options(sweep_options.SWEEP_OPTIONS)
flags.DEFINE_bool("dry_run", False, "Print the plan with estimated time and memory; train nothing.")
flags.DEFINE_integer("num_shards", 1, "Split the programs over this many jobs (all sharing --workdir).")
flags.DEFINE_integer("shard_index", 0, "Which shard this job runs, in [0, num_shards).")


def sweep_from_flags() -> sweep_lib.SweepConfig:
    return sweep_options.sweep_config(FLAGS)


def main(argv):
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        sweep = sweep_from_flags()
        # both before anything touches a JAX device (building and checking the grid does not)
        common.apply_cpu_devices(FLAGS, sweep.runs_per_program)
        common.init_distributed(FLAGS)
        if not FLAGS.dry_run:
            sweep_lib.check_sweep_workdir(sweep)  # refuse a different grid before recording the command
            with open(os.path.join(sweep.workdir, "commands.log"), "a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  python -m launch.sweep "
                        f"{' '.join(shlex.quote(a) for a in sys.argv[1:])}\n")
        sweep_lib.run_sweep(sweep, num_shards=FLAGS.num_shards, shard_index=FLAGS.shard_index,
                            log=lambda m: print(m, flush=True), dry_run=FLAGS.dry_run)
    except Interrupted as e:  # the running program checkpointed; the same command resumes the sweep
        sys.exit(e.exit_code)
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(f"error: I/O failure in {getattr(e, 'filename', None) or FLAGS.workdir}: {e.strerror or e}; "
              "finished programs and checkpoints are intact: fix the cause and run the same command to resume",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
