"""How masks are chosen at initialization: :class:`PruneConfig`, one per pruning method of a job.

A pruner name stands for a registered method (:mod:`sparse_orl.pruning.registry`) plus the options
its name implies (``erk_random`` = ``random`` with ``allocation="erk"``), or for ``narrow``: not a
pruner but the equal-parameter dense control (a dense network as wide as the sparse one keeps
weights; :mod:`sparse_orl.job.narrow`). Every other field is a remedy option with an "off" default;
``score_batch`` and ``rounds`` default to the method's own (SNIP: 100 transitions, 1 round; GraSP:
200, 1; SynFlow: no batch, 100 rounds) and are refused by methods that do not use them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

from sparse_orl import pruning
from sparse_orl.fields import check_fields, option, specs

NARROW = "narrow"  # not a pruner: dense networks as wide as the sparse ones keep weights
ALLOCATIONS = pruning.ALLOCATIONS
def pruner_names() -> Tuple[str, ...]:
    """Every name ``--pruner`` takes: the registered methods, their aliases, and narrow."""
    return tuple(sorted(set(pruning.registry.registered_names()) | {NARROW}))


@dataclasses.dataclass(frozen=True)
class PruneConfig:
    """One pruning method of a job: a pruner name plus the remedy options that apply to it."""

    pruner: str = "dense"  # a name of pruner_names() (the --pruner option: config.job.Selection)
    score_batch: Optional[int] = option(None, "Transitions in the scoring batch (methods that score the loss; "
                                        "default: the method's own).", low=1, flagged=False)
    rounds: Optional[int] = option(None, "Rounds of an iterative method (default: the method's own).", low=1,
                                   flagged=False)
    allocation: str = option("global", "Split of each network's kept budget across layers, the pruner's ranking "
                             "inside each: global (one ranking, SNIP), erk (Erdős–Rényi-Kernel, RigL) or uniform.",
                             choices=ALLOCATIONS)
    min_layer_density: float = option(0.0, "Per-layer density floor: each layer keeps at least ceil(floor * size) "
                                      "weights (0 = off).", low=0, high=1, high_open=True)
    warmup_steps: int = option(0, "Score masks after this many dense training steps (NOT pruning at init; "
                               "label +warmupN). 0 = off.", low=0)
    warmup_rewind: bool = option(True, "With --warmup_steps: apply the masks to the initial weights (true) or "
                                 "keep the warmed-up weights (false).")
    warmup_batch: int = option(100, "Batch size of the dense warm-up steps.", low=1)
    rescale_init: bool = option(False, "After masking, scale each unit's kept incoming weights by "
                                "sqrt(fan_in / kept fan_in) so its pre-activation variance is the dense one "
                                "(data-free; still pruning at init; label +rescale).")
    prune_networks: Tuple[str, ...] = option((), "Prune only these networks of the algorithm, comma list (e.g. "
                                             "actor: the deployed policy sparse, the critics dense; label "
                                             "+only-actor). Each keeps the mask the full pruning gives it; the "
                                             "others train dense. Empty = every network the algorithm scores.")

    def __post_init__(self):
        check_fields(self)
        # sorted and unique: one spelling per set of networks in labels, hashes and config.json
        nets = tuple(n.strip() for n in self.prune_networks)
        if any(not n for n in nets):
            raise ValueError(f"--prune_networks must be a comma list of network names, got {list(nets)!r}")
        object.__setattr__(self, "prune_networks", tuple(sorted(set(nets))))
        if self.pruner == NARROW:
            given = self.remedies()
            if given:
                raise ValueError(f"--pruner=narrow does not take --{', --'.join(given)} (it applies to nothing)")
            return
        try:
            name, spec = pruning.registry.resolve_pruner(self.pruner)
        except ValueError:
            raise ValueError(f"--pruner must be one of {', '.join(pruner_names())}, got {self.pruner!r}") from None
        for f, v in spec.defaults.items():  # a recipe name (erk_random) stands for its base + options
            if getattr(self, f) not in (v, DEFAULTS[f]):
                raise ValueError(f"--pruner={self.pruner} means --{f}={v}; it conflicts with --{f}={getattr(self, f)}")
            object.__setattr__(self, f, v)
        if spec.defaults:  # results name the base method with its options: erk_random -> "random+erk"
            name = next((n for n, o in pruning.registry.PRUNERS.items() if o.scorer is spec.scorer and not o.defaults),
                        name)
        object.__setattr__(self, "pruner", name)
        if self.warmup_steps == 0 and (not self.warmup_rewind or self.warmup_batch != DEFAULTS["warmup_batch"]):
            raise ValueError("--warmup_rewind / --warmup_batch need --warmup_steps > 0")
        bad = [f for f in self.remedies() if f not in self.applicable(self.pruner)]
        if bad:
            raise ValueError(f"--pruner={self.pruner} does not take --{', --'.join(bad)} "
                             f"(it applies to {', '.join('--' + a for a in self.applicable(self.pruner)) or 'nothing'})")
        # the method's own defaults, so that configs and hashes say what ran
        if self.score_batch is None and spec.batch is not None:
            object.__setattr__(self, "score_batch", spec.batch)
        if self.rounds is None and spec.rounds is not None:
            object.__setattr__(self, "rounds", spec.rounds)

    def remedies(self) -> Tuple[str, ...]:
        """Names of the options set away from their defaults (the method's own defaults count as unset)."""
        spec = None if self.pruner == NARROW else pruning.registry.resolve_pruner(self.pruner)[1]
        own = {"score_batch": getattr(spec, "batch", None), "rounds": getattr(spec, "rounds", None)}
        return tuple(f for f in DEFAULTS if f != "pruner" and getattr(self, f) not in (DEFAULTS[f], own.get(f)))

    @staticmethod
    def applicable(pruner: str) -> Tuple[str, ...]:
        """Options that make sense for ``pruner`` (others are refused)."""
        if pruner == NARROW:
            return ()
        _, spec = pruning.registry.resolve_pruner(pruner)
        if spec.scorer is None:  # dense
            return ()
        out = []
        if spec.batch is not None:
            out.append("score_batch")
        if spec.rounds is not None:
            out.append("rounds")
        return tuple(out) + ("allocation", "min_layer_density", "warmup_steps", "warmup_rewind", "warmup_batch",
                             "rescale_init", "prune_networks")

    @classmethod
    def for_pruner(cls, pruner: str, **options) -> "PruneConfig":
        """PruneConfig for ``pruner`` with only the ``options`` that apply to it.

        Lets one set of options describe several methods trained side by side
        (e.g. ``--pruner=snip,random --rounds=5`` iterates SNIP only).
        """
        allowed = set(cls.applicable(pruner))
        return cls(pruner=pruner, **{k: v for k, v in options.items() if k in allowed})

    def check_networks(self, networks: Tuple[str, ...], algo_name: str) -> None:
        """Refuse ``prune_networks`` that the algorithm (scored ``networks``) cannot honour."""
        if not self.prune_networks:
            return
        unknown = [n for n in self.prune_networks if n not in networks]
        if unknown:
            raise ValueError(f"--prune_networks names {', '.join(unknown)}, which {algo_name} does not prune; "
                             f"its networks are {', '.join(networks)}")
        if set(self.prune_networks) == set(networks):
            raise ValueError(f"--prune_networks={','.join(self.prune_networks)} lists every network {algo_name} "
                             "prunes: leave it out")

    @property
    def is_dense(self) -> bool:
        """Trains the full-size network without masks: its runs are at sparsity 0 only."""
        return not self.is_narrow and pruning.registry.resolve_pruner(self.pruner)[1].scorer is None

    @property
    def is_narrow(self) -> bool:
        """The equal-parameter dense control: a dense, narrower network per sparsity level."""
        return self.pruner == NARROW

    @property
    def uses_loss(self) -> bool:
        """Whether the method scores the networks' losses (SNIP, GraSP): what a re-ranking loss changes."""
        return not self.is_narrow and pruning.registry.resolve_pruner(self.pruner)[1].uses_loss

    def driver_options(self) -> Dict:
        """The options of :func:`sparse_orl.pruning.prune_at_init` this config sets."""
        return dict(allocation=self.allocation, min_layer_density=self.min_layer_density, rounds=self.rounds)

    @property
    def label(self) -> str:
        """Name of this pruning method in results (unique within an experiment).

        The name a user types: "dense" for the dense network (``none`` too; a run at sparsity 0 is
        labelled dense too), "narrow" for the control, a recipe's own name ("erk_random", also for
        ``random`` with ``allocation="erk"``). Then every other non-default option, e.g. "snip",
        "snip+erk", "snip+floor0.01", "snip+iter5", "synflow", "synflow+it20",
        "snip+warmup500" (masks from 500 dense steps, rewound to init: NOT pruning at init),
        "snip+warmup500-norewind", "erk_random+only-actor" (``prune_networks``).
        """
        if self.is_dense:
            return "dense"
        if self.is_narrow:
            return NARROW
        spec = pruning.registry.resolve_pruner(self.pruner)[1]
        name, implied = self.pruner, {}
        for preset, o in pruning.registry.PRUNERS.items():  # the name a user types for it (erk_random)
            if o.defaults and o.scorer is spec.scorer and all(getattr(self, f) == v for f, v in o.defaults.items()):
                name, implied = preset, dict(o.defaults)
                break
        parts = [name]
        if self.allocation != "global" and "allocation" not in implied:
            parts.append(self.allocation)
        if self.min_layer_density > 0:
            parts.append(f"floor{self.min_layer_density:g}")
        if spec.rounds is not None and self.rounds != spec.rounds:
            parts.append(f"iter{self.rounds}" if spec.rounds == 1 else f"it{self.rounds}")
        if self.warmup_steps > 0:
            w = f"warmup{self.warmup_steps}"
            if self.warmup_batch != DEFAULTS["warmup_batch"]:
                w += f"b{self.warmup_batch}"
            parts.append(w + ("" if self.warmup_rewind else "-norewind"))
        if self.rescale_init:
            parts.append("rescale")
        if self.prune_networks:
            parts.append("only-" + "-".join(self.prune_networks))
        return "+".join(parts)

    def to_dict(self) -> Dict[str, Any]:
        """The options set away from their defaults, with ``pruner``: what config.json records and
        sweep hashes cover (an option added later, at a default that changes nothing, leaves them valid)."""
        d = {"pruner": self.pruner}
        spec = None if self.is_narrow else pruning.registry.resolve_pruner(self.pruner)[1]
        own = {"score_batch": getattr(spec, "batch", None), "rounds": getattr(spec, "rounds", None)}
        for s in specs(self):
            v = getattr(self, s.name)
            if s.name != "pruner" and v not in (DEFAULTS[s.name], own.get(s.name)):
                d[s.name] = list(v) if isinstance(v, tuple) else v
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "PruneConfig":
        """The config recorded as ``d``, also in the layout written before ``score_batch`` / ``rounds``
        (``snip_batch``, ``grasp_batch``, ``prune_iterations``, ``synflow_iterations``; ``vae_score``
        now belongs to the BC/BCQ config: see :func:`legacy_vae_score`)."""
        d = upgrade_prune_dict(d)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


DEFAULTS = {f.name: f.default for f in dataclasses.fields(PruneConfig)}


@dataclasses.dataclass(frozen=True)
class PrunerOptions:
    """The options one pruning method owns: its scoring batch and its rounds (left out: the method's own
    default). Each applies to its method only (``--pruner=snip,synflow --synflow_rounds=20``)."""

    snip_batch: Optional[int] = option(None, "Transitions in SNIP's scoring batch (default 100).", low=1)
    grasp_batch: Optional[int] = option(None, "Transitions in GraSP's scoring batch (default 200).", low=1)
    snip_rounds: Optional[int] = option(None, "SNIP in this many rounds on an exponential schedule, rescoring the "
                                        "masked params each round (default 1: one-shot).", low=1)
    grasp_rounds: Optional[int] = option(None, "GraSP in this many rounds, as --snip_rounds (default 1).", low=1)
    synflow_rounds: Optional[int] = option(None, "Rounds of SynFlow (default 100, as Tanaka et al. 2020).", low=1)

    def __post_init__(self):
        check_fields(self)

    @staticmethod
    def owner(name: str) -> str:
        """The method an option belongs to: "snip" for snip_batch."""
        return name.rsplit("_", 1)[0]

    def for_method(self, pruner: str) -> Dict[str, int]:
        """{"score_batch", "rounds"} that this method was given (its base method's options)."""
        base = PruneConfig(pruner=pruner).pruner if pruner != NARROW else pruner
        out = {}
        for f in ("batch", "rounds"):
            v = getattr(self, f"{base}_{f}", None)
            if v is not None:
                out["score_batch" if f == "batch" else "rounds"] = v
        return out
_LEGACY = ("snip_batch", "grasp_batch", "prune_iterations", "synflow_iterations", "vae_score")


def upgrade_prune_dict(d: Dict[str, Any]) -> Dict[str, Any]:
    """A recorded PruneConfig dict in today's layout (older files had one batch and one rounds option
    per method family, and ``vae_score`` here): the values that method actually used, defaults dropped."""
    if not any(k in d for k in _LEGACY):
        return dict(d)
    out = {k: v for k, v in d.items() if k not in _LEGACY}
    name = d.get("pruner", "dense")
    if name != NARROW:
        _, spec = pruning.registry.resolve_pruner(name)
        if spec.batch is not None:
            batch = d.get("grasp_batch" if name == "grasp" else "snip_batch")
            if batch is not None and batch != spec.batch:
                out["score_batch"] = batch
        if spec.rounds is not None:
            rounds = d.get("synflow_iterations" if spec.uses_paths else "prune_iterations")
            if rounds is not None and rounds != spec.rounds:
                out["rounds"] = rounds
    return out


def legacy_vae_score(prune_dicts) -> Optional[str]:
    """The ``vae_score`` an older config recorded on its pruning methods ("acting" if any did), or None."""
    vals = {p.get("vae_score") for p in prune_dicts if isinstance(p, dict)}
    return "acting" if "acting" in vals else None
