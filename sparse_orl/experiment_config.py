"""What one job trains (:class:`ExperimentConfig`) and how it reports (:class:`LogConfig`).

Frozen configs, built from options in :mod:`sparse_orl.options` (flags or ``sparse_orl.train``
keywords) and run by :func:`sparse_orl.experiment.run_experiment`.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Dict, List, Optional, Tuple

from sparse_orl import pruning
from sparse_orl.algos import AlgoConfig, BCQConfig, make_algorithm
from sparse_orl.config import PruneConfig


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything one ``launch.train`` job needs. Built from flags in ``launch/`` only."""

    dataset: str
    workdir: str
    agent: AlgoConfig = BCQConfig()
    prunes: Tuple[PruneConfig, ...] = (PruneConfig("none"),)  # pruning methods trained side by side
    seeds: Tuple[int, ...] = (0,)
    sparsities: Tuple[float, ...] = (0.0,)
    steps: int = 1_000_000
    batch_size: int = 100
    eval_every: int = 5000
    eval_episodes: int = 10
    checkpoint_every: int = 10000
    env: Optional[str] = None
    eval_max_episode_steps: Optional[int] = None  # None: the env's own limit (1000 for MuJoCo)
    max_transitions: Optional[int] = None  # None: every transition; else a per-seed uniform subset
    width_multiplier: float = 1.0  # hidden widths of the pruned networks times this

    def validate(self) -> None:
        if not self.seeds:
            raise ValueError("--seeds is empty: give at least one seed, e.g. --seeds=0,1,2")
        if len(set(self.seeds)) != len(self.seeds) or any(int(s) < 0 for s in self.seeds):
            raise ValueError(f"--seeds must be distinct non-negative integers, got {list(self.seeds)}")
        if not self.sparsities:
            raise ValueError("--sparsity is empty: give at least one level in [0, 1)")
        for s in self.sparsities:
            pruning.check_sparsity(s, "--sparsity")
        if len(set(self.sparsities)) != len(self.sparsities):
            raise ValueError(f"--sparsity has repeated levels: {list(self.sparsities)}")
        if not self.prunes:
            raise ValueError("--pruner is empty: give at least one pruning method")
        networks = make_algorithm(self.agent, 1, 1, 1.0).networks  # shapes do not change which networks
        for p in self.prunes:
            p.check_networks(networks, self.agent.display_name)
        if any(p.is_narrow for p in self.prunes) and any(p.prune_networks for p in self.prunes):
            # the narrow control narrows every network: it would not match a partly pruned one
            raise ValueError("--pruner=narrow cannot be combined with --prune_networks (the narrow control "
                             "narrows every network); train it in a job of its own")
        labels = [p.label for p in self.prunes]
        if len(set(labels)) != len(labels):
            raise ValueError(f"--pruner has repeated methods: {labels}")
        for name in ("steps", "batch_size", "eval_every", "checkpoint_every"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.eval_episodes < 0:
            raise ValueError(f"--eval_episodes must be >= 0, got {self.eval_episodes}")
        if self.max_transitions is not None and (isinstance(self.max_transitions, bool)
                                                 or int(self.max_transitions) < 1):
            raise ValueError(f"--max_transitions must be >= 1 (or left out for the whole dataset), "
                             f"got {self.max_transitions}")
        w = self.width_multiplier
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (0 < w < float("inf")):
            raise ValueError(f"--width_multiplier must be a finite number > 0, got {w!r}")
        if self.eval_max_episode_steps is not None and self.eval_max_episode_steps < 1:
            raise ValueError(f"--eval_max_episode_steps must be >= 1 (or left out for the env's own limit), "
                             f"got {self.eval_max_episode_steps}")

    @property
    def agent_config(self) -> AlgoConfig:
        """The agent config the runs train: ``agent`` with the pruned networks' hidden widths
        times ``width_multiplier`` (unchanged at 1)."""
        if self.width_multiplier == 1.0:
            return self.agent
        nets = set(make_algorithm(self.agent, 1, 1, 1.0).networks)
        chosen = {n for p in self.prunes for n in p.prune_networks}
        return self.agent.widened(self.width_multiplier, tuple(sorted(chosen or nets)))

    @property
    def runs(self) -> List[Tuple[int, int, float]]:
        """(method index, seed, sparsity) of every run.

        A run at sparsity 0 is the dense network whatever its method: one per seed, from the
        dense method if one is listed, else from the first method given level 0.
        """
        levels = [(0.0,) if p.is_dense else tuple(float(x) for x in self.sparsities) for p in self.prunes]
        owners = [i for i, p in enumerate(self.prunes) if p.is_dense] + [
            i for i, p in enumerate(self.prunes) if not p.is_dense and 0.0 in levels[i]]
        dense_owner = owners[0] if owners else None
        out = []
        for i in range(len(self.prunes)):
            out += [(i, int(seed), sp) for seed in self.seeds for sp in levels[i]
                    if sp != 0.0 or i == dense_owner]
        return out

    @property
    def runs_per_program(self) -> int:
        """Runs of the largest compiled program: all runs but the narrow controls', which train
        in programs of their own (one per sparsity level, one run per seed)."""
        main = sum(1 for m, _, sp in self.runs if not (self.prunes[m].is_narrow and sp != 0.0))
        return max(main, len(self.seeds) if any(p.is_narrow for p in self.prunes) else 0)

    def run_label(self, method: int, sparsity: float) -> str:
        """A run's name in every output: "dense" at sparsity 0, else its method's label."""
        return "dense" if float(sparsity) == 0.0 else self.prunes[method].label

    def to_dict(self) -> Dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["agent"] = self.agent.to_dict()
        d["prunes"] = [dataclasses.asdict(p) for p in self.prunes]
        return json.loads(json.dumps(d))


@dataclasses.dataclass(frozen=True)
class LogConfig:
    """How a job reports, apart from what it trains (not part of the experiment's identity)."""

    log_every_s: float = 30.0  # a progress line at least this often
    chunk_s: float = 5.0  # seconds of training per compiled call: how soon a signal is acted on
    report: bool = True  # write <workdir>/report/ at the end
    tensorboard: bool = True
    wandb_project: Optional[str] = None
    wandb_mode: str = "online"
