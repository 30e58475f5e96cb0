"""A resumable sweep over algos x pruners x sparsity levels x datasets x seeds.

Example (the CPU-sized sweep of the README)::

    MINARI_DATASETS_PATH=../shared/datasets python -m launch.sweep \\
        --algos=bc --bc_vae_only --pruners=dense,snip,grasp,random --sparsities=0.5,0.9,0.95,0.99 \\
        --seeds=0,1,2 --datasets=sb3/halfcheetah/expert-v0 --steps=20000 --workdir=runs/sweep

Add ``--dry_run`` to print the plan (programs, runs, estimated time and memory)
first. Split over jobs with ``--num_shards=N --shard_index=i`` (same workdir).
Re-running the same command resumes; a different grid on the same workdir is
refused. Results: ``<workdir>/results.csv`` and ``results.jsonl``, and a table at the end.
"""
from __future__ import annotations

import os
import shlex
import sys
import time

from absl import app, logging

from launch import flags as flags_lib
from sparse_orl.sweep.config import build_sweep, sweep_options
from sparse_orl.trainer.devices import DeviceConfig, apply_devices

OPTIONS = sweep_options()
DEVICE_OPTIONS = flags_lib.class_options(DeviceConfig, "devices")
flags_lib.define(OPTIONS + DEVICE_OPTIONS)


def main(argv):
    if not flags_lib.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        flags_lib.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    from sparse_orl.job import Interrupted
    from sparse_orl.store.checkpoint import CheckpointError
    from sparse_orl.sweep import check_sweep_workdir, run_sweep

    try:
        sweep, shard = build_sweep(flags_lib.given(OPTIONS))
        # before anything touches a JAX device (building and checking the grid does not)
        apply_devices(flags_lib.build(DeviceConfig, DEVICE_OPTIONS), sweep.runs_per_program)
        if not shard.dry_run:
            check_sweep_workdir(sweep)  # refuse a different grid before recording the command
            with open(os.path.join(sweep.workdir, "commands.log"), "a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  python -m launch.sweep "
                        f"{' '.join(shlex.quote(a) for a in sys.argv[1:])}\n")
        run_sweep(sweep, num_shards=shard.num_shards, shard_index=shard.shard_index,
                  log=lambda m: print(m, flush=True), dry_run=shard.dry_run)
    except Interrupted as e:  # the running program checkpointed; the same command resumes the sweep
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("\ninterrupted during start-up; nothing to resume", file=sys.stderr)
        sys.exit(130)
    except (ValueError, FileNotFoundError) as e:
        flags_lib.fail(str(e))
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(f"error: I/O failure in {getattr(e, 'filename', None) or flags_lib.FLAGS.workdir}: {e.strerror or e}; "
              "finished programs and checkpoints are intact: fix the cause and run the same command to resume",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=flags_lib.parse_flags)
