"""Frozen configuration dataclasses. Built from flags in ``launch/`` only."""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

ALGOS = ("bcq", "bc")
PRUNERS = ("none", "snip", "grasp", "random", "magnitude")
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
    """How masks are chosen at initialization."""

    pruner: str = "none"
    snip_batch: int = 100
    grasp_batch: int = 200

    def __post_init__(self):
        if self.pruner not in PRUNERS:
            raise ValueError(f"--pruner must be one of {PRUNERS}, got {self.pruner!r}")

    @property
    def label(self) -> str:
        """Name of this pruning method in results (unique within an experiment)."""
        return self.pruner

    @property
    def score_batch(self) -> int:
        return self.grasp_batch if self.pruner == "grasp" else self.snip_batch
