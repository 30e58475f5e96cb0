"""Prune at init and train sparse offline-RL agents: every seed x sparsity x pruner in one compiled program.

Example (the README's main job: about 15 minutes on 2 CPU cores)::

    MINARI_DATASETS_PATH=../shared/datasets python -m launch.train \
        --algo=bc --bc_vae_only --pruner=none,snip,erk_random --sparsity=0.95 --seeds=0 \
        --dataset=sb3/halfcheetah/expert-v0 --steps=30000 --workdir=runs/main

Re-running the same command on the same --workdir resumes from the last checkpoint.
Ctrl-C (SIGINT) or SIGTERM: the current chunk finishes, a checkpoint is written, and the
job exits 130 / 143; the same command resumes. A second signal stops at once.
The same job from Python: ``sparse_orl.train(dataset=..., algo=..., ...)``.
"""
from __future__ import annotations

import sys

from absl import app, flags, logging

from launch import common
from sparse_orl import options
from sparse_orl.checkpoint import CheckpointError
from sparse_orl.experiment import run_experiment
from sparse_orl.interrupts import Interrupted

FLAGS = flags.FLAGS
common.define_train_flags()
common.define_distributed_flags()
common.define_cpu_flags()
flags.adopt_module_key_flags(common)  # --help lists the shared sparse_orl flags too


def main(argv):
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config, logs = options.experiment_config(FLAGS, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
        # both before anything touches a JAX device (building the config does not)
        common.apply_cpu_devices(FLAGS, config.runs_per_program)
        common.init_distributed(FLAGS)
        summary = run_experiment(config, log=lambda m: print(m, flush=True), logs=logs)
    except Interrupted as e:
        sys.exit(e.exit_code)
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))
    except CheckpointError as e:  # an I/O failure while checkpointing (bad input is exit 2, this is 1)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:  # disk full, a file system gone read-only, ... mid-run: the checkpoints stay intact
        print(f"error: I/O failure in {getattr(e, 'filename', None) or FLAGS.workdir}: {e.strerror or e}; "
              "the last complete checkpoint is intact: fix the cause and run the same command to resume",
              file=sys.stderr)
        sys.exit(1)
    runs = summary.get("runs", [])
    if runs and all(r.get("status") == "diverged" for r in runs):
        print(f"error: every run diverged (non-finite loss); see {config.workdir}/summary.json", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
