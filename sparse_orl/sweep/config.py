"""The grid of a sweep (:class:`SweepConfig`) and how a sweep job runs (:class:`ShardConfig`); the
options of ``launch.sweep`` and :func:`sparse_orl.train_sweep`, derived from their fields.

A sweep's options are its axes (algorithms, pruning methods, datasets, sparsity levels, seeds), the
per-run settings every job has (:class:`~sparse_orl.config.RunSettings`: declared there once), and
the algorithms' and pruning methods' own options (declared on their configs).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from sparse_orl import algos as algos_lib
from sparse_orl.config import (MAX_SEED, Option, PruneConfig, RunSettings, agent_config, agent_option_owners,
                               agent_options, check_agent_options, check_names, prune_configs, typed)
from sparse_orl.config.job import JOB_DEFAULTS, JOB_HOW
from sparse_orl.config.prune import PrunerOptions
from sparse_orl.fields import check_fields, option, specs
from sparse_orl.report.results import SWEEP_FILE
from sparse_orl.store.atomic import atomic_write_json, read_json
from sparse_orl.store.locks import workdir_lock
from sparse_orl.store.workdir import differences
from sparse_orl.sweep.plan import plan
from sparse_orl.config.job import upgrade_config_dict

SWEEP_VERSION = 1


@dataclasses.dataclass(frozen=True)
class SweepConfig(RunSettings):
    """The grid of a sweep: algos x pruners x sparsity levels x datasets x seeds."""

    algos: Tuple[str, ...] = option(("bcq", "bc"), "Algorithms, comma list of {algos}.")
    pruners: Tuple[str, ...] = option(("dense", "snip", "grasp", "random", "magnitude"), "Pruning methods, comma "
                                      "list of {pruners} (dense is trained once per seed; erk_random = random "
                                      "ranking with the ERK budget, the recommended method at high sparsity).")
    sparsities: Tuple[float, ...] = option((0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99),
                                           "Sparsity levels (fraction of prunable weights removed), comma list.",
                                           low=0, high=1, high_open=True)
    datasets: Tuple[str, ...] = option((), "Minari dataset ids (or D4RL .hdf5 paths), comma list.")
    seeds: Tuple[int, ...] = option((0, 1, 2, 3, 4), "Seeds, comma list.", low=0, high=MAX_SEED)
    max_runs_per_program: Optional[int] = option(None, "Cap on the runs vmapped in one compiled program (split "
                                                 "over seeds first, then pruners, then levels). Default: no cap.",
                                                 low=1)
    workdir: Optional[str] = option(None, "Sweep folder (sweep.json, programs/, locks/, results.csv/.jsonl).")
    agents: Tuple[algos_lib.AlgoConfig, ...] = ()  # one config per algorithm (built from algos + their options)
    prunes: Tuple[PruneConfig, ...] = ()  # built from pruners + the pruning options

    def __post_init__(self):
        check_fields(self)

    @property
    def runs_per_program(self) -> int:
        """Runs of the sweep's largest compiled program (see ``ExperimentConfig.runs_per_program``)."""
        return max(p.config.runs_per_program for p in plan(dataclasses.replace(self, workdir="")))

    def validate(self) -> None:
        if not self.workdir:
            raise ValueError("--workdir is required")
        if not self.datasets:
            raise ValueError("--datasets is required (comma list of Minari ids or D4RL .hdf5 paths)")
        for name, values in (("datasets", self.datasets), ("algos", [a.algo for a in self.agents]),
                             ("pruners", [p.label for p in self.prunes]), ("sparsities", self.sparsities),
                             ("seeds", self.seeds)):
            if not values:
                raise ValueError(f"--{name} is empty")
            if len(set(values)) != len(values):
                raise ValueError(f"--{name} has repeats: {list(values)}")
        for p in plan(self):
            p.config.validate()

    def grid(self) -> Dict:
        """What ``sweep.json`` records: everything but the workdir and the axes' names (their configs
        stand for them); options added later are left out at their defaults."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name not in ("workdir", "algos", "pruners")}
        d["agents"] = [a.to_dict() for a in self.agents]
        d["prunes"] = [p.to_dict() for p in self.prunes]
        d = json.loads(json.dumps(d))
        return {k: v for k, v in d.items() if k not in JOB_HOW and not (k in JOB_DEFAULTS and v == JOB_DEFAULTS[k])}

    @classmethod
    def from_grid(cls, workdir: str, grid: Dict[str, Any]) -> "SweepConfig":
        """The sweep a ``sweep.json`` grid records (older layouts included)."""

        g = dict(grid)
        up = upgrade_config_dict({"prunes": g.get("prunes", []), "agent": {}})
        # an older grid's VAE scoring applies to the agents whose config has that field; the others drop it
        agents = tuple(algos_lib.config_from_dict(dict(a, **up["agent"])) for a in g.pop("agents"))
        prunes = tuple(PruneConfig.from_dict(p) for p in up["prunes"])
        g.pop("prunes", None)
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in g.items()
              if k in {f.name for f in dataclasses.fields(cls)}}
        return cls(workdir=workdir, agents=agents, prunes=prunes, algos=tuple(a.algo for a in agents),
                   pruners=tuple(p.label for p in prunes), **kw)


@dataclasses.dataclass(frozen=True)
class ShardConfig:
    """How one ``launch.sweep`` job takes part in a sweep (not part of the grid)."""

    num_shards: int = option(1, "Split the programs over this many jobs (all sharing --workdir).", low=1)
    shard_index: int = option(0, "Which shard this job runs, in [0, num_shards).", low=0)
    dry_run: bool = option(False, "Print the plan with estimated time and memory; train nothing.")

    def __post_init__(self):
        check_fields(self)
        if self.shard_index >= self.num_shards:
            raise ValueError(f"--shard_index must be in [0, {self.num_shards - 1}], got {self.shard_index}")


# ---- sweep.json ------------------------------------------------------------------------
def check_sweep_workdir(sweep, write: bool = True, programs: Optional[Sequence[str]] = None) -> bool:
    """Refuse a workdir that holds a different grid (naming every field that differs, in full);
    record the grid if new, and the planned ``programs`` (what reports read).

    Returns True if ``sweep.json`` existed. With ``write=False`` nothing is written.
    """
    path = os.path.join(sweep.workdir, SWEEP_FILE)
    new = {"version": SWEEP_VERSION, "grid": sweep.grid()}
    if write:
        os.makedirs(sweep.workdir, exist_ok=True)
    lock = workdir_lock(sweep.workdir, "sweep") if write else None
    if lock is not None:
        lock.acquire(block=True)
    try:
        existed = os.path.exists(path)
        if existed:
            old = read_json(path, "sweep grid file")
            try:
                old_grid = SweepConfig.from_grid(sweep.workdir, old["grid"]).grid()
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"sweep grid file {path} cannot be read ({type(e).__name__}: {e})") from None
            if old_grid != new["grid"] or old.get("version") != SWEEP_VERSION:
                details = "; ".join(differences(old_grid, new["grid"])) or "version"
                raise ValueError(f"--workdir={sweep.workdir} holds a different sweep ({details}). Use a new "
                                 "--workdir, or re-run the original command to resume.")
            new = dict(old, grid=old["grid"])  # keep what was recorded
        if write and (not existed or (programs is not None and new.get("programs") != list(programs))):
            if programs is not None:
                new["programs"] = list(programs)
            atomic_write_json(path, new)
        return existed
    finally:
        if lock is not None:
            lock.release()


def load_sweep(workdir: str):
    """The :class:`~sparse_orl.sweep.config.SweepConfig` recorded in ``<workdir>/sweep.json``."""
    path = os.path.join(workdir, SWEEP_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir} is not a sweep workdir (no {SWEEP_FILE})")
    d = read_json(path, "sweep grid file")
    try:
        return SweepConfig.from_grid(workdir, d["grid"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"sweep grid file {path} cannot be read ({type(e).__name__}: {e})") from None


def sweep_options() -> Tuple[Option, ...]:
    """Every option of a sweep, grouped as ``launch.sweep --help`` shows them."""
    own = tuple(Option(s, (SweepConfig,), "the sweep") for s in specs(SweepConfig) if s.flagged)
    shard = tuple(Option(s, (ShardConfig,), "the sweep") for s in specs(ShardConfig))
    prune = tuple(Option(s, (cls,), "pruning at init") for cls in (PrunerOptions, PruneConfig) for s in specs(cls)
                  if s.flagged)
    return own + shard + prune + agent_options()


def build_sweep(given: Mapping[str, Any]) -> Tuple[SweepConfig, ShardConfig]:
    """The validated grid and shard of a sweep from the options ``given`` (typed values; flag names)."""
    options = sweep_options()
    for single, plural in (("algo", "algos"), ("pruner", "pruners"), ("dataset", "datasets"),
                           ("sparsity", "sparsities")):
        if single in given:
            raise ValueError(f"a sweep takes --{plural} (a comma list), not --{single}")
    check_names(given, options, "launch.sweep")
    given = typed(options, given)
    own = {s.flag: s.name for s in specs(SweepConfig)}
    kw = {own[k]: v for k, v in given.items() if k in own}
    algos = kw.get("algos", SweepConfig.algos)
    for a in algos:
        if a not in algos_lib.ALGORITHMS:
            raise ValueError(f"--algos must be a comma list of {', '.join(sorted(algos_lib.ALGORITHMS))}, got {a!r}")
    check_agent_options(given, algos)
    agent_given = {k: v for k, v in given.items() if k in agent_option_owners()}
    agents = tuple(agent_config(agent_given, a) for a in algos)
    names = kw.get("pruners", SweepConfig.pruners)
    prunes = prune_configs(names, given)
    if all(p.is_dense for p in prunes):
        kw["sparsities"] = (0.0,)
    sweep = SweepConfig(agents=agents, prunes=prunes, **kw)
    if sweep.workdir:
        sweep = dataclasses.replace(sweep, workdir=os.path.abspath(sweep.workdir))
    sweep.validate()
    shard_fields = {s.flag: s.name for s in specs(ShardConfig)}
    return sweep, ShardConfig(**{shard_fields[k]: v for k, v in given.items() if k in shard_fields})
