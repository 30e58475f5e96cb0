"""What one job trains (:class:`ExperimentConfig`) and how it reports (:class:`LogConfig`).

Frozen configs whose fields are the job's options (:func:`sparse_orl.fields.option`). The
launchers derive their flags from these fields and :func:`sparse_orl.train` its keywords;
both build the configs with :func:`sparse_orl.config.options.build_job`. A job is run by
:func:`sparse_orl.job.run_experiment`.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List, Optional, Tuple

from sparse_orl.algos import ALGORITHMS, AlgoConfig, BCQConfig, config_from_dict, make_algorithm
from sparse_orl.config.prune import PruneConfig, legacy_vae_score, upgrade_prune_dict
from sparse_orl.fields import check_fields, option

MAX_SEED = 2**32 - 1  # run keys are PRNGKey(uint32 seed)


@dataclasses.dataclass(frozen=True)
class Selection:
    """The options that choose classes: the algorithm, and the pruning methods of a job."""

    algo: str = option("bcq", "Offline RL algorithm: {algos}.")
    pruner: Tuple[str, ...] = option(("snip",), "How to choose masks at initialization, a comma list trained "
                                     "side by side in one program: {pruners}. erk_random = random ranking with the "
                                     "ERK budget per layer (the recommended method at high sparsity); dense = none; "
                                     "narrow = the equal-parameter dense control (a dense network with as many "
                                     "weights as each sparsity level keeps).")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Per-run settings a job and a sweep share."""

    steps: int = option(1_000_000, "Gradient steps per run.", low=1)
    batch_size: int = option(100, "Mini-batch size.", low=1)
    eval_every: int = option(5000, "Evaluate every this many steps.", low=1)
    eval_episodes: int = option(10, "Evaluation episodes per run (0: no evaluation).", low=0)
    eval_max_episode_steps: Optional[int] = option(None, "Cap evaluation episodes at this length (default: the "
                                                   "env's limit).", low=1)
    checkpoint_every: int = option(10000, "Checkpoint every this many steps (and at an interrupt).", low=1)
    max_transitions: Optional[int] = option(None, "Train on a subset of this many transitions, drawn uniformly "
                                            "without replacement per seed from every episode (not Sparse-Reg's "
                                            "first N rows: docs/design.md); observation "
                                            "statistics and pruning scores come from it (default: the whole "
                                            "dataset).", low=1)
    data_subset: str = option("uniform", "Which --max_transitions transitions: uniform (each seed its own "
                              "uniform draw from every episode) or first (the dataset's first N rows, whole "
                              "episodes in file order, the same for every seed: Sparse-Reg's buffer).",
                              choices=("uniform", "first"))
    width_multiplier: float = option(1.0, "Hidden widths of the pruned networks times this: with a higher "
                                     "--sparsity, a wider sparse network with about as many weights "
                                     "(sparse-wide).", low=0, low_open=True)
    sparse_format: str = option("auto", "How pruned kernels train: masked (a 0/1 mask times a dense kernel: the "
                                "dense cost), compact (kept values plus indices, CPU kernels: the kept weights' "
                                "cost), or auto (compact on the CPU for each layer where it measures faster, "
                                "masked elsewhere). The same masks and results up to float rounding.",
                                choices=("auto", "masked", "compact"))


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(RunSettings):
    """Everything one ``launch.train`` job trains: a dataset, an algorithm, pruning methods x seeds x levels."""

    dataset: Optional[str] = option(None, "Minari dataset id (e.g. sb3/halfcheetah/expert-v0) or a D4RL .hdf5 "
                                    "path.")
    env: Optional[str] = option(None, "Gymnasium env id for evaluation (default: the dataset's own env).")
    workdir: Optional[str] = option(None, "Output folder (config, summary, metrics, checkpoints, final params, "
                                    "report).")
    seeds: Tuple[int, ...] = option((0, 1, 2), "Seeds, comma list.", low=0, high=MAX_SEED)
    sparsities: Tuple[float, ...] = option((0.95,), "Sparsity levels (fraction of prunable weights removed), "
                                           "comma list. A level of 0 trains the dense network (labelled dense, "
                                           "whatever --pruner says).", flag="sparsity", low=0, high=1,
                                           high_open=True)
    agent: AlgoConfig = BCQConfig()
    prunes: Tuple[PruneConfig, ...] = (PruneConfig("dense"),)  # pruning methods trained side by side

    def __post_init__(self):
        check_fields(self)
        object.__setattr__(self, "prunes", tuple(self.prunes))

    def validate(self) -> None:
        """Refuse what no single field can see: required fields, repeats, combinations."""
        if not self.dataset:
            raise ValueError("--dataset is required (a Minari id or a D4RL .hdf5 path)")
        if not self.workdir:
            raise ValueError("--workdir is required")
        if self.data_subset != "uniform" and self.max_transitions is None:
            raise ValueError(f"--data_subset={self.data_subset} needs --max_transitions (the subset's size)")
        if not self.seeds:
            raise ValueError("--seeds is empty: give at least one seed, e.g. --seeds=0,1,2")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"--seeds has repeats: {list(self.seeds)}")
        if not self.sparsities:
            raise ValueError("--sparsity is empty: give at least one level in [0, 1)")
        if len(set(self.sparsities)) != len(self.sparsities):
            raise ValueError(f"--sparsity has repeated levels: {list(self.sparsities)}")
        if not self.prunes:
            raise ValueError("--pruner is empty: give at least one pruning method")
        algo = make_algorithm(self.agent, 1, 1, 1.0)  # shapes do not change which networks
        for p in self.prunes:
            p.check_networks(algo.networks, self.agent.display_name)
        self.agent.check_prunes(self.prunes)
        if any(p.is_narrow for p in self.prunes) and any(p.prune_networks for p in self.prunes):
            # the narrow control narrows every network: it would not match a partly pruned one
            raise ValueError("--pruner=narrow cannot be combined with --prune_networks (the narrow control "
                             "narrows every network); train it in a job of its own")
        labels = [self.method_label(i) for i in range(len(self.prunes))]
        if len(set(labels)) != len(labels):
            raise ValueError(f"--pruner has repeated methods: {labels}")

    @property
    def agent_config(self) -> AlgoConfig:
        """The agent config the runs train: ``agent`` with the pruned networks' hidden widths times
        ``width_multiplier`` (unchanged at 1)."""
        if self.width_multiplier == 1.0:
            return self.agent
        algo = make_algorithm(self.agent, 1, 1, 1.0)
        chosen = {n for p in self.prunes for n in p.prune_networks}
        return self.agent.widened(self.width_multiplier, tuple(sorted(chosen or set(algo.networks))),
                                  algo.network_specs)

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

    def method_label(self, method: int) -> str:
        """Method ``method``'s name in results: its label plus what the agent's config adds to it."""
        p = self.prunes[method]
        suffix = getattr(self.agent, "label_suffix", None)
        return p.label + (suffix(p.uses_loss) if suffix and not (p.is_dense or p.is_narrow) else "")

    def run_label(self, method: int, sparsity: float) -> str:
        """A run's name in every output: "dense" at sparsity 0, else its method's label."""
        return "dense" if float(sparsity) == 0.0 else self.method_label(method)

    def to_dict(self) -> Dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["agent"] = self.agent.to_dict()
        d["prunes"] = [p.to_dict() for p in self.prunes]
        return json.loads(json.dumps(d))

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ExperimentConfig":
        """The config recorded as ``d`` (``config.json``), older layouts included."""
        d = upgrade_config_dict(d)
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()
              if k in {f.name for f in dataclasses.fields(cls)} and k not in ("agent", "prunes")}
        return cls(agent=config_from_dict(d["agent"]), prunes=tuple(PruneConfig.from_dict(p) for p in d["prunes"]),
                   **kw)


# Job options added after workdirs were first written: at these values they are left out of the
# comparison (and of sweep program hashes), so an older config.json still matches.
JOB_DEFAULTS = {"max_transitions": None, "data_subset": "uniform", "width_multiplier": 1.0}
# How a job trains, not what: left out of its identity (a format change is checked against the
# checkpoints instead, see sparse_orl.job.program).
JOB_HOW = ("sparse_format",)


def upgrade_config_dict(d: Dict[str, Any]) -> Dict[str, Any]:
    """A recorded job config in today's layout: the pruning methods' dicts upgraded
    (:func:`~sparse_orl.config.prune.upgrade_prune_dict`) and an older ``vae_score`` moved to the agent."""
    d = dict(d)
    if "prunes" in d:
        vae = legacy_vae_score(d["prunes"])
        d["prunes"] = [upgrade_prune_dict(p) for p in d["prunes"]]
        if vae and isinstance(d.get("agent"), dict):
            d["agent"] = dict(d["agent"], vae_score=vae)
    return d


def comparable_config(d: Dict[str, Any]) -> Dict[str, Any]:
    """A config dict as compared on resume and hashed by sweeps: upgraded to today's layout, the
    workdir path left out (a moved workdir still resumes), and options added later dropped at their
    defaults, so a config written before a library upgrade still matches."""
    d = upgrade_config_dict(d)
    d = {k: v for k, v in d.items()
         if k != "workdir" and k not in JOB_HOW and not (k in JOB_DEFAULTS and v == JOB_DEFAULTS[k])}
    if isinstance(d.get("agent"), dict) and d["agent"].get("algo") in ALGORITHMS:
        cls = ALGORITHMS[d["agent"]["algo"]].config_cls
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        d["agent"] = {k: v for k, v in d["agent"].items() if not (k in cls.added_later and v == defaults[k])}
    if "prunes" in d:
        d["prunes"] = [{k: v for k, v in PruneConfig.from_dict(p).to_dict().items()} for p in d["prunes"]]
    return d


@dataclasses.dataclass(frozen=True)
class LogConfig:
    """How a job reports, apart from what it trains (not part of the experiment's identity)."""

    log_every_s: float = option(30.0, "Print a progress line (and a metrics row) at least every this many "
                                "seconds of training.", low=0, low_open=True)
    chunk_s: float = option(5.0, "Seconds of training per compiled call, sized from the measured speed: how "
                            "soon a progress line, Ctrl-C or SIGTERM is acted on (each call is one host sync).",
                            low=0, low_open=True)
    report: bool = option(True, "At the end, write the report (report.md and PNGs) into <workdir>/report/.")
    tensorboard: bool = option(True, "Write TensorBoard event files into <workdir>/tensorboard/ (tensorboardX).")
    wandb_project: Optional[str] = option(None, "Also log to Weights & Biases, in this project (needs `pip "
                                          "install wandb`).")
    wandb_mode: str = option("online", "W&B mode: online, or offline (no network; `wandb sync` later).",
                             choices=("online", "offline"))

    def __post_init__(self):
        check_fields(self)
        if self.wandb_mode != "online" and not self.wandb_project:
            raise ValueError("--wandb_mode needs --wandb_project")
