"""BCQ (Fujimoto, Meger, Precup 2019), continuous version."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from sparse_orl.algos.agent import Agent


@dataclasses.dataclass(frozen=True)
class BCQ(Agent):
    """Critic targets use perturbed VAE samples; acting takes argmax Q1 over n candidates."""

    def next_actions(self, actor_target, vae_params, next_obs_rep, z):
        """a'_j = ξ_target(s', G(s', z_j)) for each of the repeated next states."""
        return self.actor.apply({"params": actor_target}, next_obs_rep, self.decode(vae_params, next_obs_rep, z))

    def act(self, params, obs_mean, obs_std, obs, key):
        """argmax_j Q1(s, ξ(s, G(s, z_j))) over ``num_act_samples`` clipped latents z_j."""
        c = self.config
        obs = self.normalize(obs_mean, obs_std, obs)
        n = c.num_act_samples
        s_rep = jnp.broadcast_to(obs[..., None, :], obs.shape[:-1] + (n, obs.shape[-1]))
        z = self.clipped_latent(key, obs.shape[:-1] + (n,), c.train_latent_clip)
        cand = self.actor.apply({"params": params["actor"]}, s_rep, self.decode(params["vae"], s_rep, z))
        q1 = self.critic.apply({"params": params["critic"]["q1"]}, s_rep, cand)
        best = jnp.argmax(q1, axis=-1)
        return jnp.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]
