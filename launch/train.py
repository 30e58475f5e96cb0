"""Prune at init and train sparse offline-RL agents: every seed x sparsity x pruner in one compiled program.

Example (the README's main job, a few minutes on 2 CPU cores)::

    MINARI_DATASETS_PATH=../shared/datasets python -m launch.train \\
        --algo=bc --bc_vae_only --pruner=dense,snip,erk_random --sparsity=0.95 --seeds=0 \\
        --dataset=sb3/halfcheetah/expert-v0 --steps=30000 --workdir=runs/main

Re-running the same command on the same --workdir resumes from the last checkpoint.
Ctrl-C (SIGINT) or SIGTERM: the current chunk finishes, a checkpoint is written, and the
job exits 130 / 143; the same command resumes. A second signal stops at once.
The same job from Python: ``sparse_orl.train(dataset=..., algo=..., ...)``.
"""
from __future__ import annotations

import sys
import time

from absl import app, logging

from launch import flags as flags_lib
from sparse_orl.config import build_job, job_options
from sparse_orl.trainer.devices import DeviceConfig, apply_devices

OPTIONS = job_options()
DEVICE_OPTIONS = flags_lib.class_options(DeviceConfig, "devices")
flags_lib.define(OPTIONS + DEVICE_OPTIONS)


def main(argv):
    if not flags_lib.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        flags_lib.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    from sparse_orl.job import Interrupted
    from sparse_orl.job.run import run_experiment
    from sparse_orl.report import finish_job
    from sparse_orl.store.checkpoint import CheckpointError

    t0 = time.time()
    try:
        config, logs = build_job(flags_lib.given(OPTIONS), warn=lambda m: print(f"warning: {m}", file=sys.stderr))
        # before anything touches a JAX device (building the configs does not)
        apply_devices(flags_lib.build(DeviceConfig, DEVICE_OPTIONS), config.runs_per_program)
        summary = run_experiment(config, log=lambda m: print(m, flush=True), logs=logs)
    except Interrupted as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:  # before the job's own signal handling started: nothing was trained
        print("\ninterrupted during start-up; nothing to resume", file=sys.stderr)
        sys.exit(130)
    except (ValueError, FileNotFoundError) as e:
        flags_lib.fail(str(e))
    except CheckpointError as e:  # an I/O failure while checkpointing (bad input is exit 2, this is 1)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:  # disk full, a file system gone read-only, ... mid-run: the checkpoints stay intact
        print(f"error: I/O failure in {getattr(e, 'filename', None) or flags_lib.FLAGS.workdir}: {e.strerror or e}; "
              "the last complete checkpoint is intact: fix the cause and run the same command to resume",
              file=sys.stderr)
        sys.exit(1)
    if summary.complete:
        finish_job(summary, config.workdir, lambda m: print(m, flush=True), logs.report, time.time() - t0)
    if summary.runs and all(not r.ok for r in summary.runs):
        print(f"error: every run diverged (non-finite loss); see {config.workdir}/summary.json", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    app.run(main, flags_parser=flags_lib.parse_flags)
