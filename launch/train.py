"""Prune at init and train sparse BCQ / BC: every seed x sparsity in one compiled program.

Example::

    MINARI_DATASETS_PATH=../shared/datasets python -m launch.train \
        --algo=bc --bc_vae_only --pruner=snip --sparsity=0.0,0.9,0.95 --seeds=0,1 \
        --dataset=sb3/halfcheetah/expert-v0 --steps=30000 --workdir=runs/bc_snip

Re-running the same command on the same --workdir resumes from the last checkpoint.
"""
from __future__ import annotations

from absl import app, flags, logging

from launch import common
from sparse_orl.experiment import ExperimentConfig, run_experiment

FLAGS = flags.FLAGS
common.define_agent_flags()
common.define_prune_flags()
common.define_distributed_flags()
flags.adopt_module_key_flags(common)  # --help lists the shared sparse_orl flags too
flags.DEFINE_string("dataset", None, "Minari dataset id (e.g. mujoco/halfcheetah/expert-v0) or a D4RL .hdf5 path.")
flags.DEFINE_string("env", None, "Gymnasium env id for evaluation (default: the dataset's own env).")
flags.DEFINE_list("sparsity", ["0.95"], "Sparsity levels (fraction of prunable weights removed), comma list.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds, comma list.")
flags.DEFINE_integer("steps", 1_000_000, "Gradient steps per run.")
flags.DEFINE_integer("batch_size", 100, "Mini-batch size.")
flags.DEFINE_integer("eval_every", 5000, "Evaluate every this many steps.")
flags.DEFINE_integer("eval_episodes", 10, "Evaluation episodes per run (0: no evaluation).")
flags.DEFINE_integer("eval_max_episode_steps", None, "Cap evaluation episodes at this length (default: env limit).")
flags.DEFINE_integer("checkpoint_every", 10000, "Checkpoint every this many steps.")
flags.DEFINE_string("workdir", None, "Output folder (config, summary, metrics, checkpoints, final params).")


def config_from_flags() -> ExperimentConfig:
    if not FLAGS.dataset:
        raise ValueError("--dataset is required (a Minari id or a D4RL .hdf5 path)")
    if not FLAGS.workdir:
        raise ValueError("--workdir is required")
    common.check_agent_flags(FLAGS, [FLAGS.algo])
    agent = common.agent_config_from_flags(FLAGS)
    prunes = common.prune_configs_from_flags(FLAGS)
    sparsities = common.parse_floats(FLAGS.sparsity, "sparsity")
    if all(p.is_dense for p in prunes):
        if FLAGS["sparsity"].present and any(s != 0.0 for s in sparsities):
            logging.warning("--pruner=none trains the dense network; ignoring --sparsity=%s",
                            ",".join(FLAGS.sparsity))
        sparsities = (0.0,)
    return ExperimentConfig(
        dataset=FLAGS.dataset,
        workdir=FLAGS.workdir,
        agent=agent,
        prunes=prunes,
        seeds=common.parse_ints(FLAGS.seeds, "seeds"),
        sparsities=sparsities,
        steps=FLAGS.steps,
        batch_size=FLAGS.batch_size,
        eval_every=FLAGS.eval_every,
        eval_episodes=FLAGS.eval_episodes,
        checkpoint_every=FLAGS.checkpoint_every,
        env=FLAGS.env,
        eval_max_episode_steps=FLAGS.eval_max_episode_steps,
    )


def main(argv):
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        common.init_distributed(FLAGS)  # before anything touches a JAX device
        config = config_from_flags()
        config.validate()
        run_experiment(config)
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))


if __name__ == "__main__":
    app.run(main)
