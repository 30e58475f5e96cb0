"""BC as the paper's source runs it: BEAR's ``BCQ(cloning=True)``.

The same three networks are trained; the critic target evaluates unperturbed
VAE samples Q'(s', G(s')), and acting is one VAE decode with z clipped to
±0.25. Since acting uses the VAE alone, ``vae_only`` trains just the VAE.
"""
from __future__ import annotations

import dataclasses

from sparse_orl.algos.agent import Agent


@dataclasses.dataclass(frozen=True)
class BC(Agent):
    def next_actions(self, actor_target, vae_params, next_obs_rep, z):
        """a'_j = G(s', z_j), no perturbation (BEAR ``cloning=True``)."""
        return self.decode(vae_params, next_obs_rep, z)

    def act(self, params, obs_mean, obs_std, obs, key):
        """G(s, z), z ~ N(0, I) clipped to ±bc_act_latent_clip (BEAR ``decode_bc_test``)."""
        obs = self.normalize(obs_mean, obs_std, obs)
        z = self.clipped_latent(key, obs.shape[:-1], self.config.bc_act_latent_clip)
        return self.decode(params["vae"], obs, z)
