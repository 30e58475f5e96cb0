"""Flag definitions shared by the launchers, and their translation into configs."""
from __future__ import annotations

import sys
from typing import List, Optional, Sequence, Tuple

from absl import flags

from sparse_orl.config import ALGOS, COMPUTE_DTYPES, INIT_SCHEMES, PRUNERS, AgentConfig, PruneConfig


def define_agent_flags() -> None:
    flags.DEFINE_enum("algo", "bcq", list(ALGOS), "Offline RL algorithm.")
    flags.DEFINE_bool("bc_vae_only", False, "BC only: train and prune the VAE alone (acting uses only it).")
    flags.DEFINE_list("actor_hidden", ["400", "300"], "Actor hidden sizes.")
    flags.DEFINE_list("critic_hidden", ["400", "300"], "Critic hidden sizes.")
    flags.DEFINE_list("vae_hidden", ["750", "750"], "VAE encoder/decoder hidden sizes.")
    flags.DEFINE_integer("num_act_samples", 10, "BCQ acting: candidates scored by Q1 (BCQ HEAD uses 100).")
    flags.DEFINE_enum("init", "torch", list(INIT_SCHEMES),
                      "Weight init: PyTorch default U(±1/sqrt(fan_in)) or Flax default (lecun_normal, zero bias).")
    flags.DEFINE_bool("normalize_obs", False, "Normalize observations with dataset mean / (std + 1e-3).")
    flags.DEFINE_enum("compute_dtype", "float32", list(COMPUTE_DTYPES),
                      "Matmul input precision (bfloat16 keeps float32 accumulation and master weights).")
    flags.DEFINE_float("lr", 1e-3, "Adam learning rate of all networks.")


def define_prune_flags() -> None:
    flags.DEFINE_list("pruner", ["snip"], f"How to choose masks at initialization: one of {list(PRUNERS)}, "
                      "or a comma list to train several methods side by side in one program.")
    flags.DEFINE_integer("snip_batch", 100, "Transitions in the SNIP (and random/magnitude) scoring batch.")
    flags.DEFINE_integer("grasp_batch", 200, "Transitions in the GraSP scoring batch.")


def parse_ints(values: Sequence[str], flag: str) -> Tuple[int, ...]:
    try:
        return tuple(int(v) for v in values if str(v).strip() != "")
    except ValueError:
        raise ValueError(f"--{flag} must be a comma list of integers, got {','.join(values)!r}") from None


def parse_floats(values: Sequence[str], flag: str) -> Tuple[float, ...]:
    try:
        return tuple(float(v) for v in values if str(v).strip() != "")
    except ValueError:
        raise ValueError(f"--{flag} must be a comma list of numbers, got {','.join(values)!r}") from None


def agent_config_from_flags(FLAGS) -> AgentConfig:
    return AgentConfig(
        algo=FLAGS.algo,
        vae_only=FLAGS.bc_vae_only,
        actor_hidden=parse_ints(FLAGS.actor_hidden, "actor_hidden"),
        critic_hidden=parse_ints(FLAGS.critic_hidden, "critic_hidden"),
        vae_hidden=parse_ints(FLAGS.vae_hidden, "vae_hidden"),
        num_act_samples=FLAGS.num_act_samples,
        init_scheme=FLAGS.init,
        normalize_obs=FLAGS.normalize_obs,
        compute_dtype=FLAGS.compute_dtype,
        lr=FLAGS.lr,
    )


def prune_config_from_flags(FLAGS, pruner: Optional[str] = None) -> PruneConfig:
    """The pruning method ``pruner`` (default: the first of ``--pruner``) with the scoring flags."""
    return PruneConfig(pruner=pruner or FLAGS.pruner[0], snip_batch=FLAGS.snip_batch, grasp_batch=FLAGS.grasp_batch)


def prune_configs_from_flags(FLAGS) -> Tuple[PruneConfig, ...]:
    """One PruneConfig per method in ``--pruner``."""
    names = [p.strip() for p in FLAGS.pruner if p.strip()]
    if not names:
        raise ValueError(f"--pruner is empty: give one of {list(PRUNERS)}")
    return tuple(prune_config_from_flags(FLAGS, pruner=n) for n in names)


def fail(message: str) -> None:
    """One clear line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
