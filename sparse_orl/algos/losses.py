"""BCQ's losses as named pure functions, shared by training and pruning scores.

Each takes ``(params, batch)`` of one network, with all randomness in the batch,
so the same function scores a mask at initialization and trains the weights.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class VAEBatch:
    obs: jax.Array  # (B, obs_dim)
    action: jax.Array  # (B, act_dim)
    eps: jax.Array  # (B, latent) standard normal noise of the reparameterization


@struct.dataclass
class CriticBatch:
    obs: jax.Array
    action: jax.Array
    target: jax.Array  # (B,) the TD target y, a constant


@struct.dataclass
class ActorBatch:
    obs: jax.Array
    sampled_action: jax.Array  # (B, act_dim) G(s) decoded with clipped z, a constant


def vae_loss(vae, params, batch: VAEBatch, kl_weight: float = 0.5) -> jax.Array:
    """MSE(G(s, z), a) + kl_weight · KL, KL = −½·mean(1 + log σ² − μ² − σ²) (BCQ, element means)."""
    recon, mean, std = vae.apply({"params": params}, batch.obs, batch.action, batch.eps)
    recon_loss = jnp.mean(jnp.square(recon - batch.action))
    kl = -0.5 * jnp.mean(1.0 + jnp.log(jnp.square(std)) - jnp.square(mean) - jnp.square(std))
    return recon_loss + kl_weight * kl


def q_loss(critic, params, batch: CriticBatch) -> jax.Array:
    """MSE(Q(s, a), y) for one Q-network; the twin critic loss is the sum over Q1, Q2."""
    q = critic.apply({"params": params}, batch.obs, batch.action)
    return jnp.mean(jnp.square(q - batch.target))


def critic_loss(critic, params, batch: CriticBatch) -> jax.Array:
    """MSE(Q1, y) + MSE(Q2, y) over the twin critic ``{"q1", "q2"}``."""
    return q_loss(critic, params["q1"], batch) + q_loss(critic, params["q2"], batch)


def actor_loss(actor, critic, params, q1_params, batch: ActorBatch) -> jax.Array:
    """−mean Q1(s, ξ(s, G(s))). Gradients flow into the actor only."""
    perturbed = actor.apply({"params": params}, batch.obs, batch.sampled_action)
    return -jnp.mean(critic.apply({"params": q1_params}, batch.obs, perturbed))


def soft_clipped_double_q(q1: jax.Array, q2: jax.Array, lmbda: float) -> jax.Array:
    """λ·min(Q1, Q2) + (1 − λ)·max(Q1, Q2) (BCQ Eq. 13)."""
    return lmbda * jnp.minimum(q1, q2) + (1.0 - lmbda) * jnp.maximum(q1, q2)


def td_target(reward, done, next_q, discount: float) -> jax.Array:
    """y = r + γ·(1 − done)·max_j q(s', a'_j); ``next_q`` is (B, n) over n sampled actions."""
    return reward + discount * (1.0 - done) * jnp.max(next_q, axis=-1)
