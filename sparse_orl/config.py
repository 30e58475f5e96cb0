"""Frozen configuration dataclasses. Built from flags in ``launch/`` only."""
from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

from sparse_orl import pruning
import sparse_orl.pruning.registry  # noqa: F401  (pruning.registry)

# Named recipes: a pruner name that stands for a base pruner with remedy options set.
# "erk_random": random ranking inside each layer, per-layer budget by Erdős–Rényi-Kernel
# (Evci et al. 2020) -- the recommended pruning at init on the data measured (BUILD_NOTES, issue 5).
# "dense" is another name for "none". Both come from the pruner registry.
ALLOCATIONS = pruning.ALLOCATIONS
NARROW = "narrow"  # not a pruner: dense networks as wide as the sparse ones keep weights (sparse_orl.narrow)
VAE_SCORES = ("train", "acting")


@dataclasses.dataclass(frozen=True)
class PruneConfig:
    """How masks are chosen at initialization, and the remedies for layer collapse.

    Defaults reproduce plain one-shot pruning at init with a global ranking.
    Remedy options (each a flag of ``launch.train``; see ``sparse_orl.pruning``):

    - ``allocation``: "global" (one ranking over all kernels of a network), "erk"
      (Erdős–Rényi-Kernel budget per layer, Evci et al. 2020, with RigL's cap at
      density 1 and redistribution) or "uniform" (same density in every layer);
      the pruner's ranking is used inside each layer.
    - ``min_layer_density``: each layer keeps at least ceil(floor·n_l) weights.
    - ``prune_iterations``: SNIP/GraSP in K rounds on an exponential schedule,
      rescoring the masked params each round (iterative SNIP, cf. de Jorge et al.
      2021; Verdenius et al. 2020).
    - ``synflow_iterations``: rounds of ``pruner="synflow"`` (Tanaka et al. 2020; 100).
    - ``vae_score="acting"``: the VAE decoder is scored with the loss of acting,
      MSE(decode(s, z_prior), a), z from the clipped prior.
    - ``warmup_steps``: masks scored after N dense training steps (no longer
      pruning at init); ``warmup_rewind`` applies them to the initial weights.
    - ``rescale_init``: after masking, each unit's kept incoming weights are scaled
      by √(fan_in / kept fan_in), restoring the dense pre-activation variance
      (per-unit sparse init, Evci et al. 2022). Data-free: still pruning at init.
    - ``prune_networks``: prune only these of the algorithm's scored networks (e.g.
      ("actor",): the policy that is deployed; the critics train dense). Every network
      is still scored, so a pruned network's mask is the one the full pruning gives it
      (a controlled comparison); the others get all-ones masks. () = all.
    """

    pruner: str = "none"
    snip_batch: int = 100
    grasp_batch: int = 200
    allocation: str = "global"
    min_layer_density: float = 0.0
    prune_iterations: int = 1
    synflow_iterations: int = 100
    vae_score: str = "train"
    warmup_steps: int = 0
    warmup_rewind: bool = True
    warmup_batch: int = 100
    rescale_init: bool = False
    prune_networks: Tuple[str, ...] = ()

    def __post_init__(self):
        nets = self.prune_networks
        if not isinstance(nets, (list, tuple)) or not all(isinstance(n, str) and n.strip() for n in nets):
            raise ValueError(f"--prune_networks must be a comma list of network names, got {nets!r}")
        # sorted and unique: one spelling per set of networks in labels, hashes and config.json
        object.__setattr__(self, "prune_networks", tuple(sorted({n.strip() for n in nets})))
        if self.pruner == NARROW:  # the equal-parameter dense control (sparse_orl.narrow): no masks
            if self.remedies():
                raise ValueError(f"--pruner=narrow does not take --{', --'.join(self.remedies())} (it applies to nothing)")
            return
        name, spec = pruning.registry.resolve_pruner(self.pruner)
        for f, v in spec.defaults.items():  # a recipe name (erk_random) stands for its base + options
            if getattr(self, f) not in (v, REMEDY_DEFAULTS.get(f)):
                raise ValueError(f"pruner {self.pruner} means {f}={v!r}; it conflicts with {f}={getattr(self, f)!r}")
            object.__setattr__(self, f, v)
        if spec.defaults:  # results name the base method with its options: erk_random -> "random+erk"
            name = next((n for n, o in pruning.registry.PRUNERS.items() if o.scorer is spec.scorer and not o.defaults), name)
        object.__setattr__(self, "pruner", name)
        for f in ("snip_batch", "grasp_batch"):
            if isinstance(getattr(self, f), bool) or not getattr(self, f) >= 1:
                raise ValueError(f"--{f} must be >= 1 (transitions in the scoring batch), got {getattr(self, f)}")
        pruning.check_allocation(self.allocation, self.min_layer_density)
        if self.prune_iterations < 1:
            raise ValueError(f"--prune_iterations must be >= 1, got {self.prune_iterations}")
        if self.synflow_iterations < 1:
            raise ValueError(f"--synflow_iterations must be >= 1, got {self.synflow_iterations}")
        if self.vae_score not in VAE_SCORES:
            raise ValueError(f"--vae_score must be one of {VAE_SCORES}, got {self.vae_score!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"--warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.warmup_batch < 1:
            raise ValueError(f"--warmup_batch must be >= 1, got {self.warmup_batch}")
        if self.warmup_steps == 0 and (not self.warmup_rewind or self.warmup_batch != REMEDY_DEFAULTS["warmup_batch"]):
            raise ValueError("--warmup_rewind / --warmup_batch need --warmup_steps > 0")
        bad = [f for f in self.remedies() if f not in self.applicable_remedies(self.pruner)]
        if bad:
            raise ValueError(f"--pruner={self.pruner} does not take --{', --'.join(bad)} "
                             f"(it applies to {self.applicable_remedies(self.pruner) or 'nothing'})")

    def remedies(self) -> Tuple[str, ...]:
        """Names of the options set away from their defaults."""
        return tuple(f for f in REMEDY_DEFAULTS if getattr(self, f) != REMEDY_DEFAULTS[f])

    @staticmethod
    def applicable_remedies(pruner: str) -> Tuple[str, ...]:
        """Options that make sense for ``pruner`` (others are refused)."""
        if pruner == NARROW:
            return ()
        name, spec = pruning.registry.resolve_pruner(pruner)
        if spec.scorer is None:  # dense
            return ()
        out = ["allocation", "min_layer_density", "warmup_steps", "warmup_rewind", "warmup_batch", "rescale_init",
               "prune_networks"]
        if spec.rounds_option == "prune_iterations":
            out += ["prune_iterations", "vae_score"]
        elif spec.rounds_option == "synflow_iterations":
            out += ["synflow_iterations"]
        return tuple(out)

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
        if self.vae_score != "train" and "vae" not in self.prune_networks:
            raise ValueError(f"--vae_score={self.vae_score} changes only the VAE's mask, which "
                             f"--prune_networks={','.join(self.prune_networks)} leaves dense")

    @property
    def is_dense(self) -> bool:
        """Trains the full-size network without masks: its runs are at sparsity 0 only."""
        return not self.is_narrow and pruning.registry.resolve_pruner(self.pruner)[1].scorer is None

    @property
    def is_narrow(self) -> bool:
        """The equal-parameter dense control: a dense, narrower network per sparsity level."""
        return self.pruner == NARROW

    def driver_options(self) -> Dict:
        """The options of :func:`sparse_orl.pruning.prune_at_init` this config sets."""
        return dict(allocation=self.allocation, min_layer_density=self.min_layer_density,
                    prune_iterations=self.prune_iterations, synflow_iterations=self.synflow_iterations)

    @classmethod
    def for_pruner(cls, pruner: str, **options) -> "PruneConfig":
        """PruneConfig for ``pruner`` with only the ``options`` that apply to it.

        Lets one set of flags describe several methods trained side by side
        (e.g. ``--pruner=snip,random --prune_iterations=5`` iterates SNIP only).
        """
        allowed = set(cls.applicable_remedies(pruner))
        kept = {k: v for k, v in options.items() if k not in REMEDY_DEFAULTS or k in allowed}
        return cls(pruner=pruner, **kept)

    @property
    def label(self) -> str:
        """Name of this pruning method in results (unique within an experiment).

        "dense" for the dense network (``none``; a run at sparsity 0 is labelled dense too).
        The pruner plus every non-default remedy, e.g. "snip", "snip+erk",
        "snip+floor0.01", "snip+iter5", "synflow", "synflow+it20",
        "snip+acting", "snip+warmup500" (masks from 500 dense steps, rewound to
        init: NOT pruning at init), "snip+warmup500-norewind", "random+erk+only-actor"
        (``prune_networks``: the other networks dense).
        """
        if self.is_dense:
            return "dense"
        parts = [self.pruner]
        if self.allocation != "global":
            parts.append(self.allocation)
        if self.min_layer_density > 0:
            parts.append(f"floor{self.min_layer_density:g}")
        if self.prune_iterations > 1:
            parts.append(f"iter{self.prune_iterations}")
        if self.pruner == "synflow" and self.synflow_iterations != REMEDY_DEFAULTS["synflow_iterations"]:
            parts.append(f"it{self.synflow_iterations}")
        if self.vae_score != "train":
            parts.append(self.vae_score)
        if self.warmup_steps > 0:
            w = f"warmup{self.warmup_steps}"
            if self.warmup_batch != REMEDY_DEFAULTS["warmup_batch"]:
                w += f"b{self.warmup_batch}"
            parts.append(w + ("" if self.warmup_rewind else "-norewind"))
        if self.rescale_init:
            parts.append("rescale")
        if self.prune_networks:
            parts.append("only-" + "-".join(self.prune_networks))
        return "+".join(parts)

    @property
    def score_batch(self) -> int:
        return self.grasp_batch if self.pruner == "grasp" else self.snip_batch


# Every PruneConfig field after the core three (pruner, snip_batch, grasp_batch) is a
# remedy option; its dataclass default is the "off" value.
REMEDY_DEFAULTS = {f.name: f.default for f in dataclasses.fields(PruneConfig)
                   if f.name not in ("pruner", "snip_batch", "grasp_batch")}


def canonical_prune_dict(d: Dict) -> Dict:
    """A PruneConfig as a dict without the remedy options at their defaults.

    What sweeps record and hash: a library upgrade that adds a remedy option
    (with a default that changes nothing) leaves old sweep files and program
    names valid.
    """
    def at_default(k, v):  # a tuple default reads back from JSON as a list
        return k in REMEDY_DEFAULTS and (tuple(v) if isinstance(v, list) else v) == REMEDY_DEFAULTS[k]

    return {k: v for k, v in d.items() if not at_default(k, v)}

