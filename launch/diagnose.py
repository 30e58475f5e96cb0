"""Diagnose pruned networks: per-layer density, dead units, effective width, decoder z reliance, grad norms.

From a finished ``launch.train`` workdir (final params of every run, or one)::

    python -m launch.diagnose --workdir=runs/bc_snip [--run=3]

At initialization, without training, for the pruners in ``--pruner`` (this is
what shows why a pruner picks its masks)::

    MINARI_DATASETS_PATH=../shared/datasets python -m launch.diagnose --at_init \
        --dataset=sb3/halfcheetah/expert-v0 --algo=bc --bc_vae_only \
        --pruner=snip,grasp,random --sparsity=0.95 --seed=0 --out=diag_init.png

Prints one table per run and saves a PNG (``--out``, default
``<workdir>/diagnostics.png`` or ``diagnostics_init.png``).
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
from absl import app, flags, logging

from launch import common

FLAGS = flags.FLAGS
common.define_agent_flags()
common.define_prune_flags()
flags.adopt_module_key_flags(common)  # --help lists the shared sparse_orl flags too
flags.DEFINE_string("workdir", None, "A launch.train workdir with final/params.npz (with --at_init: where the "
                    "PNG goes).")
flags.DEFINE_integer("run", None, "Run index in the workdir (default: every run).")
flags.DEFINE_bool("at_init", False, "Build masks at init for --pruner/--sparsity/--seed instead of loading runs.")
flags.DEFINE_string("dataset", None, "--at_init: Minari id or D4RL .hdf5 path.")
flags.DEFINE_float("sparsity", 0.95, "--at_init: sparsity level.")
flags.DEFINE_integer("seed", 0, "--at_init: seed (same init as launch.train's run with this seed).")
flags.DEFINE_integer("num_samples", 10000, "Dataset samples for the decoder MSE metrics.")
flags.DEFINE_string("out", None, "PNG path (default: <workdir>/diagnostics.png, or diagnostics_init.png "
                    "with --at_init).")


def at_init():
    from sparse_orl import diagnostics
    from sparse_orl.algos import make_algorithm
    from sparse_orl.data import load_dataset, obs_stats, to_device
    from sparse_orl.training import init_runs

    if not FLAGS.dataset:
        raise ValueError("--at_init needs --dataset")
    if not FLAGS.out and not FLAGS.workdir:
        raise ValueError("--at_init needs --out=PATH.png or --workdir=DIR for its PNG")
    transitions, info = load_dataset(FLAGS.dataset)
    common.check_agent_flags(FLAGS, [FLAGS.algo])
    cfg = common.agent_config_from_flags(FLAGS)
    agent = make_algorithm(cfg, info.obs_dim, info.act_dim, info.max_action)
    transitions = agent.preprocess(transitions, info)
    data = to_device(transitions)
    mean, std = obs_stats(transitions, cfg.normalize_obs)
    results = []
    for prune in common.prune_configs_from_flags(FLAGS):
        sp = 0.0 if prune.is_dense else FLAGS.sparsity
        runs = init_runs(agent, prune, data, [FLAGS.seed], [sp], mean, std)
        st = jax.tree_util.tree_map(lambda x: x[0], runs.agent)
        d = diagnostics.diagnose(agent, st.params, st.masks, data, jax.random.PRNGKey(FLAGS.seed),
                                 jnp.asarray(mean), jnp.asarray(std), FLAGS.num_samples)
        label = f"{prune.label} {sp:g}"
        print(diagnostics.format_diagnostics(f"{label} (at init, seed {FLAGS.seed})", d), flush=True)
        results.append((label, d))
    out = FLAGS.out or os.path.join(FLAGS.workdir, "diagnostics_init.png")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    diagnostics.plot_diagnostics(results, out, f"{cfg.display_name} on {FLAGS.dataset}: masks at init, seed {FLAGS.seed}")
    print(f"saved {out}")


def from_workdir():
    from sparse_orl import diagnostics
    from sparse_orl.algos import config_from_dict, make_algorithm
    from sparse_orl.checkpoint import load_final
    from sparse_orl.data import load_dataset, to_device
    from sparse_orl.io_utils import read_json

    wd = FLAGS.workdir
    config = read_json(os.path.join(wd, "config.json"), "workdir config")
    agent_dict, runs = load_final(wd)
    cfg = config_from_dict(agent_dict or config["agent"])
    transitions, info = load_dataset(config["dataset"], env_id=config.get("env"))
    agent = make_algorithm(cfg, info.obs_dim, info.act_dim, info.max_action)
    data = to_device(agent.preprocess(transitions, info))
    idx = range(len(runs)) if FLAGS.run is None else [FLAGS.run]
    results = []
    for i in idx:
        if not 0 <= i < len(runs):
            raise ValueError(f"--run={i} out of range: the workdir has {len(runs)} runs")
        r = runs[i]
        params = jax.tree_util.tree_map(jnp.asarray, r["params"])
        masks = jax.tree_util.tree_map(jnp.asarray, r["masks"])
        d = diagnostics.diagnose(agent, params, masks, data, jax.random.PRNGKey(0),
                                 jnp.asarray(r["obs_mean"]), jnp.asarray(r["obs_std"]), FLAGS.num_samples)
        label = f"run{i} {r['pruner']} {r['sparsity']:g} s{r['seed']}"
        print(diagnostics.format_diagnostics(label, d), flush=True)
        results.append((label, d))
    out = FLAGS.out or os.path.join(wd, "diagnostics.png")
    # the title names what was trained, not where it lies (a workdir path is the machine's)
    diagnostics.plot_diagnostics(results, out, f"{cfg.display_name} on {config['dataset']}: trained masks and "
                                               f"final params ({os.path.basename(os.path.normpath(wd))})")
    print(f"saved {out}")


def main(argv):
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        common.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        if FLAGS.at_init:
            at_init()
        elif FLAGS.workdir:
            from_workdir()
        else:
            raise ValueError("give --workdir=<a launch.train workdir> or --at_init")
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
