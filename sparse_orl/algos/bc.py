"""BC as the paper's source runs it: BEAR's ``BCQ(cloning=True)``.

The same three networks are trained; the critic target evaluates unperturbed
VAE samples Q'(s', G(s')), and acting is one VAE decode with z clipped to
±0.25. Since acting uses the VAE alone, ``vae_only`` trains (and prunes) just the VAE.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Tuple

from sparse_orl.algos.base import field
from sparse_orl.algos.bcq import BCQ, BCQConfig


@dataclasses.dataclass(frozen=True)
class BCConfig(BCQConfig):
    """BCQ's hyperparameters plus BC's acting clip and the VAE-only switch."""

    algo: ClassVar[str] = "bc"
    vae_only: bool = field(False, "BC only: train and prune the VAE alone (acting uses only it).",
                           flag="bc_vae_only")
    bc_act_latent_clip: float = field(0.25, "BC acting: one decode with |z| clipped to this.")

    @property
    def networks(self) -> Tuple[str, ...]:
        return ("vae",) if self.vae_only else ("actor", "critic", "vae")

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
    def acting_networks(self) -> Tuple[str, ...]:
        return ("vae",)

    @property
    def acting_latent_clip(self) -> float:
        return self.config.bc_act_latent_clip

    def next_actions(self, actor_target, vae_params, next_obs_rep, z):
        """a'_j = G(s', z_j), no perturbation (BEAR ``cloning=True``)."""
        return self.decode(vae_params, next_obs_rep, z)

    def act(self, params, obs_mean, obs_std, obs, key):
        """G(s, z), z ~ N(0, I) clipped to ±bc_act_latent_clip (BEAR ``decode_bc_test``)."""
        obs = self.normalize(obs_mean, obs_std, obs)
        z = self.clipped_latent(key, obs.shape[:-1], self.config.bc_act_latent_clip)
        return self.decode(params["vae"], obs, z)

    def acting_program(self) -> Dict[str, Any]:
        return {
            "noise": {"z": {"shape": [self.latent_dim], "clip": self.config.bc_act_latent_clip}},
            "ops": [
                {"op": "mlp", "net": "vae", "layer": "d", "in": ["obs", "z"], "out": "h"},
                {"op": "tanh", "x": "h", "scale": self.max_action, "out": "action"},
            ],
            "output": "action",
        }
