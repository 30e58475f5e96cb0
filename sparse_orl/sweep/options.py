"""The options of a sweep (``launch.sweep``'s flags, :func:`sparse_orl.train_sweep`'s keywords) and the
:class:`~sparse_orl.sweep.plan.SweepConfig` they build: the sweep's side of :mod:`sparse_orl.options`."""
from __future__ import annotations

import os
from typing import Tuple

from sparse_orl import algos as algos_lib
from sparse_orl.options import (PRUNE_OPTIONS, Option, agent_config, agent_options, check_agent_options,
                                parse_floats, parse_ints, prune_config, run_settings)
from sparse_orl.sweep.plan import SweepConfig

SWEEP_OPTIONS = (
    Option("algos", "list", ["bcq", "bc"], "Algorithms, comma list of "
           + ", ".join(sorted(algos_lib.ALGORITHMS)) + "."),
    Option("pruners", "list", ["none", "snip", "grasp", "random", "magnitude"],
           "Pruning methods, comma list ('none' = dense, trained once per seed; 'erk_random' = random "
           "--allocation=erk, the recommended method at high sparsity)."),
    Option("sparsities", "list", ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "0.95", "0.98",
                                  "0.99"], "Sparsity levels (fraction of prunable weights removed), comma list."),
    Option("datasets", "list", None, "Minari dataset ids (or D4RL .hdf5 paths), comma list."),
    Option("seeds", "list", ["0", "1", "2", "3", "4"], "Seeds, comma list."),
    Option("steps", "int", 1_000_000, "Gradient steps per run."),
    Option("batch_size", "int", 100, "Mini-batch size."),
    Option("eval_every", "int", 5000, "Evaluate every this many steps."),
    Option("eval_episodes", "int", 10, "Evaluation episodes per run (0: no evaluation)."),
    Option("eval_max_episode_steps", "int", None, "Cap evaluation episodes at this length (default: env limit)."),
    Option("checkpoint_every", "int", 10000, "Checkpoint every this many steps."),
    Option("max_transitions", "int", None, "Train on a per-seed uniform subset of this many transitions "
           "(default: the whole dataset)."),
    Option("width_multiplier", "float", 1.0, "Hidden widths of the pruned networks times this."),
    Option("workdir", "str", None, "Sweep folder (sweep.json, programs/, locks/, results.csv/.jsonl)."),
    Option("max_runs_per_program", "int", None, "Cap on the runs vmapped in one compiled program "
           "(split over seeds first, then pruners, then levels). Default: no cap."),
)


def sweep_options() -> Tuple[Option, ...]:
    """Every option of a sweep: the agent and pruning options of a job, with lists of algorithms,
    pruners, levels and datasets."""
    return agent_options() + PRUNE_OPTIONS + SWEEP_OPTIONS


def sweep_config(opts):
    """The :class:`~sparse_orl.sweep.SweepConfig` of a sweep, validated (``opts``: :func:`sweep_options`)."""
    if opts["algo"].present:
        raise ValueError("a sweep takes --algos (a comma list), not --algo")
    if opts["pruner"].present:
        raise ValueError("a sweep takes --pruners (a comma list), not --pruner")
    if not opts.datasets:
        raise ValueError("--datasets is required (comma list of Minari ids or D4RL .hdf5 paths)")
    if not opts.workdir:
        raise ValueError("--workdir is required")
    algos = [a.strip() for a in opts.algos if a.strip()]
    for a in algos:
        if a not in algos_lib.ALGORITHMS:
            raise ValueError(f"--algos must be a comma list of {', '.join(sorted(algos_lib.ALGORITHMS))}, got {a!r}")
    check_agent_options(opts, algos)
    agents = tuple(agent_config(opts, algo=a) for a in algos)
    prunes = tuple(prune_config(opts, pruner=p.strip()) for p in opts.pruners if p.strip())
    sparsities = parse_floats(opts.sparsities, "sparsities")
    if all(p.is_dense for p in prunes):
        sparsities = (0.0,)
    sweep = SweepConfig(
        workdir=os.path.abspath(opts.workdir),
        datasets=tuple(d.strip() for d in opts.datasets if d.strip()),
        agents=agents,
        prunes=prunes,
        sparsities=sparsities,
        seeds=parse_ints(opts.seeds, "seeds"),
        max_runs_per_program=opts.max_runs_per_program,
        **run_settings(opts),
    )
    sweep.validate()
    return sweep
