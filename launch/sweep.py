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
from sparse_orl.checkpoint import CheckpointError
from sparse_orl.algos import ALGORITHMS
from sparse_orl.interrupts import Interrupted

FLAGS = flags.FLAGS
common.define_agent_flags()
common.define_prune_flags()
common.define_distributed_flags()
common.define_cpu_flags()
flags.adopt_module_key_flags(common)  # --help lists the shared sparse_orl flags too
flags.DEFINE_list("algos", ["bcq", "bc"], f"Algorithms, comma list of {', '.join(sorted(ALGORITHMS))}.")
flags.DEFINE_list("pruners", ["none", "snip", "grasp", "random", "magnitude"],
                  "Pruning methods, comma list ('none' = dense, trained once per seed; 'erk_random' = random "
                  "--allocation=erk, the recommended method at high sparsity).")
flags.DEFINE_list("sparsities", ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "0.95", "0.98",
                                 "0.99"], "Sparsity levels (fraction of prunable weights removed), comma list.")
flags.DEFINE_list("datasets", None, "Minari dataset ids (or D4RL .hdf5 paths), comma list.")
flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds, comma list.")
flags.DEFINE_integer("steps", 1_000_000, "Gradient steps per run.")
flags.DEFINE_integer("batch_size", 100, "Mini-batch size.")
flags.DEFINE_integer("eval_every", 5000, "Evaluate every this many steps.")
flags.DEFINE_integer("eval_episodes", 10, "Evaluation episodes per run (0: no evaluation).")
flags.DEFINE_integer("eval_max_episode_steps", None, "Cap evaluation episodes at this length (default: env limit).")
flags.DEFINE_integer("checkpoint_every", 10000, "Checkpoint every this many steps.")
flags.DEFINE_string("workdir", None, "Sweep folder (sweep.json, programs/, locks/, results.csv/.jsonl).")
flags.DEFINE_integer("max_runs_per_program", None, "Cap on the runs vmapped in one compiled program "
                     "(split over seeds first, then pruners, then levels). Default: no cap.")
flags.DEFINE_bool("dry_run", False, "Print the plan with estimated time and memory; train nothing.")
flags.DEFINE_integer("num_shards", 1, "Split the programs over this many jobs (all sharing --workdir).")
flags.DEFINE_integer("shard_index", 0, "Which shard this job runs, in [0, num_shards).")


def sweep_from_flags() -> sweep_lib.SweepConfig:
    if FLAGS["algo"].present:
        raise ValueError("launch.sweep takes --algos (a comma list), not --algo")
    if FLAGS["pruner"].present:
        raise ValueError("launch.sweep takes --pruners (a comma list), not --pruner")
    if not FLAGS.datasets:
        raise ValueError("--datasets is required (comma list of Minari ids or D4RL .hdf5 paths)")
    if not FLAGS.workdir:
        raise ValueError("--workdir is required")
    algos = [a.strip() for a in FLAGS.algos if a.strip()]
    for a in algos:
        if a not in ALGORITHMS:
            raise ValueError(f"--algos must be a comma list of {', '.join(sorted(ALGORITHMS))}, got {a!r}")
    common.check_agent_flags(FLAGS, algos)
    agents = tuple(common.agent_config_from_flags(FLAGS, algo=a) for a in algos)
    prunes = tuple(common.prune_config_from_flags(FLAGS, pruner=p.strip()) for p in FLAGS.pruners if p.strip())
    sparsities = common.parse_floats(FLAGS.sparsities, "sparsities")
    if all(p.is_dense for p in prunes):
        sparsities = (0.0,)
    return sweep_lib.SweepConfig(
        workdir=os.path.abspath(FLAGS.workdir),
        datasets=tuple(d.strip() for d in FLAGS.datasets if d.strip()),
        agents=agents,
        prunes=prunes,
        sparsities=sparsities,
        seeds=common.parse_ints(FLAGS.seeds, "seeds"),
        steps=FLAGS.steps,
        batch_size=FLAGS.batch_size,
        eval_every=FLAGS.eval_every,
        eval_episodes=FLAGS.eval_episodes,
        checkpoint_every=FLAGS.checkpoint_every,
        eval_max_episode_steps=FLAGS.eval_max_episode_steps,
        max_runs_per_program=FLAGS.max_runs_per_program,
    )


def main(argv):
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        sweep = sweep_from_flags()
        sweep.validate()
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
