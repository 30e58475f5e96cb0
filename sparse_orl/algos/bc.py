"""BC as the paper's source runs it: BEAR's ``BCQ(cloning=True)``.

The same three networks are trained; the critic target evaluates unperturbed
VAE samples Q'(s', G(s')), and acting is one VAE decode with z clipped to
±0.25. Since acting uses the VAE alone, ``vae_only`` trains (and prunes) just the VAE.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Tuple

from sparse_orl.algos.base import NetworkSpec
from sparse_orl.algos.bcq import BCQ, BCQConfig
from sparse_orl.fields import option


@dataclasses.dataclass(frozen=True)
class BCConfig(BCQConfig):
    """BCQ's hyperparameters plus BC's acting clip and the VAE-only switch."""

    algo: ClassVar[str] = "bc"
    vae_only: bool = option(False, "Train and prune the VAE alone (acting uses only it).", flag="bc_vae_only")
    bc_act_latent_clip: float = option(0.25, "Acting: one decode with |z| clipped to this.", low=0)

    @property
    def label(self) -> str:
        return "bc-vae" if self.vae_only else "bc"

    @property
    def display_name(self) -> str:
        return "BC (VAE only)" if self.vae_only else "BC"


@dataclasses.dataclass(frozen=True)
class BC(BCQ):
    config: BCConfig

    @property
    def network_specs(self) -> Tuple[NetworkSpec, ...]:
        vae = NetworkSpec("vae", "vae_hidden", acts=("",), title="VAE")
        if self.config.vae_only:
            return (vae,)
        return (NetworkSpec("actor", "actor_hidden", target=True),
                NetworkSpec("critic", "critic_hidden", twin=True, target=True), vae)

    @property
    def acting_latent_clip(self) -> float:
        return self.config.bc_act_latent_clip

    def next_actions(self, actor_target, vae_params, next_obs_rep, z):
        """a'_j = G(s', z_j), no perturbation (BEAR ``cloning=True``)."""
        return self.decode(vae_params, next_obs_rep, z)

    def acting_program(self) -> Dict[str, Any]:
        """G(s, z), z ~ N(0, I) clipped to ±bc_act_latent_clip (BEAR ``decode_bc_test``)."""
        return {
            "noise": {"z": {"shape": [self.latent_dim], "clip": self.config.bc_act_latent_clip}},
            "ops": [
                {"op": "mlp", "net": "vae", "layer": "d", "in": ["obs", "z"], "out": "h"},
                {"op": "tanh", "x": "h", "scale": self.max_action, "out": "action"},
            ],
            "output": "action",
        }
