"""Diagnose pruned networks: per-layer density, dead units, effective width, decoder z reliance, grad norms.

From a finished workdir (final params of every run, or one; the narrow control's programs too)::

    python -m launch.diagnose --workdir=runs/bc_snip [--run=3]

At initialization, without training, for the pruners in ``--pruner`` (this is
what shows why a pruner picks its masks)::

    MINARI_DATASETS_PATH=../shared/datasets python -m launch.diagnose --at_init \\
        --dataset=sb3/halfcheetah/expert-v0 --algo=bc --bc_vae_only \\
        --pruner=snip,grasp,random --sparsity=0.95 --seed=0 --out=diag_init.png

Prints one table per run and saves a PNG (``--out``, default
``<workdir>/diagnostics.png`` or ``diagnostics_init.png``).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from absl import app, logging

from launch import flags as flags_lib
from sparse_orl.config import Selection, agent_option_owners, agent_options, check_agent_options, prune_configs
from sparse_orl.config.prune import PruneConfig, PrunerOptions
from sparse_orl.fields import check_fields, option


@dataclasses.dataclass(frozen=True)
class DiagnoseOptions:
    workdir: Optional[str] = option(None, "A finished launch.train workdir (with --at_init: where the PNG goes).")
    run: Optional[int] = option(None, "Run index in the workdir's summary (default: every run).", low=0)
    at_init: bool = option(False, "Build masks at init for --pruner / --sparsity / --seed instead of loading runs.")
    dataset: Optional[str] = option(None, "--at_init: Minari id or D4RL .hdf5 path.")
    sparsity: float = option(0.95, "--at_init: sparsity level.", low=0, high=1, high_open=True)
    seed: int = option(0, "--at_init: seed (the same init as launch.train's run with this seed).", low=0,
                       high=2**32 - 1)
    num_samples: int = option(10000, "Dataset samples for the decoder MSE metrics.", low=1)
    out: Optional[str] = option(None, "PNG path (default: <workdir>/diagnostics.png, or diagnostics_init.png with "
                                "--at_init).")

    def __post_init__(self):
        check_fields(self)


OPTIONS = flags_lib.class_options(DiagnoseOptions)
SELECTION = flags_lib.class_options(Selection)
AT_INIT = SELECTION + agent_options() + flags_lib.class_options(PrunerOptions) + flags_lib.class_options(PruneConfig)
flags_lib.define(OPTIONS + AT_INIT)


def at_init(o: DiagnoseOptions):
    import jax
    import jax.numpy as jnp

    from sparse_orl.algos import make_algorithm
    from sparse_orl.config import agent_config
    from sparse_orl.data import load_dataset, obs_stats, to_device
    from sparse_orl.report import diagnostics
    from sparse_orl.trainer.runs import init_runs

    if not o.dataset:
        raise ValueError("--at_init needs --dataset")
    if not o.out and not o.workdir:
        raise ValueError("--at_init needs --out=PATH.png or --workdir=DIR for its PNG")
    given = flags_lib.given(AT_INIT)
    algo_name = given.get("algo", Selection.algo)
    check_agent_options(given, [algo_name])
    cfg = agent_config({k: v for k, v in given.items() if k in agent_option_owners()}, algo_name)
    prunes = prune_configs(given.get("pruner", Selection.pruner), given)
    transitions, info = load_dataset(o.dataset)
    agent = make_algorithm(cfg, info.obs_dim, info.act_dim, info.max_action)
    transitions = agent.preprocess(transitions, info)
    data = to_device(transitions)
    mean, std = obs_stats(transitions, cfg.normalize_obs)
    results = []
    for prune in prunes:
        if prune.is_narrow:
            raise ValueError("--pruner=narrow has no masks to diagnose")
        sp = 0.0 if prune.is_dense else o.sparsity
        runs = init_runs(agent, prune, data, [o.seed], [sp], mean, std)
        st = jax.tree_util.tree_map(lambda x: x[0], runs.agent)
        d = diagnostics.diagnose(agent, st.params, st.masks, data, jax.random.PRNGKey(o.seed),
                                 jnp.asarray(mean), jnp.asarray(std), o.num_samples)
        label = f"{prune.label} {sp:g}"
        print(diagnostics.format_diagnostics(f"{label} (at init, seed {o.seed})", d), flush=True)
        results.append((label, d))
    out = o.out or os.path.join(o.workdir, "diagnostics_init.png")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    diagnostics.plot_diagnostics(results, out, f"{cfg.display_name} on {o.dataset}: masks at init, seed {o.seed}")
    print(f"saved {out}")


def from_workdir(o: DiagnoseOptions):
    import jax
    import jax.numpy as jnp

    from sparse_orl.algos import algorithm_from_dict
    from sparse_orl.data import load_dataset, to_device
    from sparse_orl.report import diagnostics
    from sparse_orl.store.final import load_final, run_folders, select_run
    from sparse_orl.store.summary import read_summary

    wd = o.workdir
    summary = read_summary(wd)
    entries = [select_run(wd, o.run)] if o.run is not None else run_folders(wd)
    dataset = summary.config["dataset"] if summary else None
    results, title = [], ""
    for folder in dict.fromkeys(f for f, _, _ in entries):
        agent_dict, runs = load_final(folder)
        agent = algorithm_from_dict(agent_dict)
        transitions, info = load_dataset(dataset, env_id=agent_dict.get("env_id"))
        data = to_device(agent.preprocess(transitions, info))
        title = f"{agent.config.display_name} on {dataset}"
        for f, i, meta in entries:
            if f != folder:
                continue
            r = runs[i]
            params = jax.tree_util.tree_map(jnp.asarray, r["params"])
            masks = jax.tree_util.tree_map(jnp.asarray, r["masks"])
            d = diagnostics.diagnose(agent, params, masks, data, jax.random.PRNGKey(0),
                                     jnp.asarray(r["obs_mean"]), jnp.asarray(r["obs_std"]), o.num_samples)
            label = f"{meta['pruner']} {meta['sparsity']:g} s{meta['seed']}"
            print(diagnostics.format_diagnostics(label, d), flush=True)
            results.append((label, d))
    out = o.out or os.path.join(wd, "diagnostics.png")
    # the title names what was trained, not where it lies (a workdir path is the machine's)
    diagnostics.plot_diagnostics(results, out, f"{title}: trained masks and final params "
                                               f"({os.path.basename(os.path.normpath(wd))})")
    print(f"saved {out}")


def main(argv):
    if not flags_lib.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        flags_lib.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        o = flags_lib.build(DiagnoseOptions, OPTIONS)
        if o.at_init:
            at_init(o)
        elif o.workdir:
            unused = sorted(flags_lib.given(AT_INIT))
            if unused:
                raise ValueError(f"--{unused[0]} applies to --at_init only")
            from_workdir(o)
        else:
            raise ValueError("give --workdir=<a launch.train workdir> or --at_init")
    except (ValueError, FileNotFoundError) as e:
        flags_lib.fail(str(e))


if __name__ == "__main__":
    app.run(main, flags_parser=flags_lib.parse_flags)
