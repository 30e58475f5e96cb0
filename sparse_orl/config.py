"""Frozen configuration dataclasses. Built from flags in ``launch/`` only."""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

ALGOS = ("bcq", "bc")
PRUNERS = ("none", "snip", "grasp", "random", "magnitude", "synflow")
# Named recipes: a pruner name that stands for a base pruner with remedy options set.
# "erk_random": random ranking inside each layer, per-layer budget by Erdős–Rényi-Kernel
# (Evci et al. 2020) -- the recommended pruning at init on the data measured (BUILD_NOTES, issue 5).
PRUNER_PRESETS = {"erk_random": ("random", {"allocation": "erk"})}
ALLOCATIONS = ("global", "erk", "uniform")
VAE_SCORES = ("train", "acting")
INIT_SCHEMES = ("torch", "flax")
COMPUTE_DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Hyperparameters of BCQ / BC (facts file, sections 2-3). Defaults are the paper's."""

    algo: str = "bcq"  # "bcq" or "bc" (BEAR's cloning variant of BCQ)
    vae_only: bool = False  # BC only: train and prune the VAE alone (acting uses only it)
    actor_hidden: Tuple[int, ...] = (400, 300)
    critic_hidden: Tuple[int, ...] = (400, 300)
    vae_hidden: Tuple[int, ...] = (750, 750)
    latent_dim: Optional[int] = None  # None -> 2 * act_dim
    phi: float = 0.05
    lmbda: float = 0.75
    discount: float = 0.99
    tau: float = 0.005
    lr: float = 1e-3
    kl_weight: float = 0.5
    num_target_samples: int = 10  # repeated next-state samples in the critic target
    num_act_samples: int = 10  # BCQ acting: argmax of Q1 over this many candidates
    train_latent_clip: float = 0.5  # z ~ N(0, I) clipped when decoding in training / BCQ acting
    bc_act_latent_clip: float = 0.25  # BC acting: one decode with z clipped to this
    init_scheme: str = "torch"
    compute_dtype: str = "float32"
    normalize_obs: bool = False

    def __post_init__(self):
        if self.algo not in ALGOS:
            raise ValueError(f"--algo must be one of {ALGOS}, got {self.algo!r}")
        if self.vae_only and self.algo != "bc":
            raise ValueError("--bc_vae_only applies to --algo=bc only")
        if self.init_scheme not in INIT_SCHEMES:
            raise ValueError(f"--init must be one of {INIT_SCHEMES}, got {self.init_scheme!r}")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"--compute_dtype must be one of {COMPUTE_DTYPES}, got {self.compute_dtype!r}")

    @property
    def networks(self) -> Tuple[str, ...]:
        return ("vae",) if self.vae_only else ("actor", "critic", "vae")


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

    def __post_init__(self):
        if self.pruner not in PRUNERS:
            raise ValueError(f"--pruner must be one of {PRUNERS}, got {self.pruner!r}")
        if self.allocation not in ALLOCATIONS:
            raise ValueError(f"--allocation must be one of {ALLOCATIONS}, got {self.allocation!r}")
        if not (0.0 <= self.min_layer_density < 1.0):
            raise ValueError(f"--min_layer_density must be in [0, 1), got {self.min_layer_density!r}")
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
        if pruner == "none":
            return ()
        out = ["allocation", "min_layer_density", "warmup_steps", "warmup_rewind", "warmup_batch", "rescale_init"]
        if pruner in ("snip", "grasp"):
            out += ["prune_iterations", "vae_score"]
        if pruner == "synflow":
            out += ["synflow_iterations"]
        return tuple(out)

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

        The pruner plus every non-default remedy, e.g. "snip", "snip+erk",
        "snip+floor0.01", "snip+iter5", "synflow", "synflow+it20",
        "snip+acting", "snip+warmup500" (masks from 500 dense steps, rewound to
        init: NOT pruning at init), "snip+warmup500-norewind".
        """
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
    return {k: v for k, v in d.items() if not (k in REMEDY_DEFAULTS and v == REMEDY_DEFAULTS[k])}

