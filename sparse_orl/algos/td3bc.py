"""TD3+BC (Fujimoto & Gu 2021, "A Minimalist Approach to Offline Reinforcement Learning").

Defaults are the authors' (their code, ``sfujim/TD3_BC``): actor and twin critic 256-256,
Adam 3e-4, target noise σ = 0.2·max_action clipped to ±0.5·max_action, policy delay 2 with
the targets moving only on actor steps, λ = α / mean|Q| with α = 2.5, states normalized.

State layout::

    params        = {"actor": {"net": ...}, "critic": {"q1": ..., "q2": ...}}
    target_params = {"actor": ..., "critic": ...}

Pruning at init: the actor from its own loss (Q1 fixed, λ from Q at init), the critic from
MSE(Q1, y) with y from the initial (= target) networks, a constant; Q2 takes Q1's mask.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from sparse_orl.algos import losses
from sparse_orl.algos.base import AlgoConfig, Algorithm, NetworkSpec, TrainState, twin_init
from sparse_orl.data.transitions import Transitions
from sparse_orl.algos.networks import MLP, Critic
from sparse_orl.fields import option


@dataclasses.dataclass(frozen=True)
class TD3BCConfig(AlgoConfig):
    """Hyperparameters of TD3+BC; defaults are the authors'."""

    algo: ClassVar[str] = "td3bc"
    display_name: ClassVar[str] = "TD3+BC"
    actor_hidden: Tuple[int, ...] = option((256, 256), "Actor hidden sizes.", low=1)
    critic_hidden: Tuple[int, ...] = option((256, 256), "Critic (each Q-network) hidden sizes.", low=1)
    lr: float = option(3e-4, "Adam learning rate of actor and critic.", low=0, low_open=True)
    discount: float = option(0.99, "Discount γ.", low=0, high=1)
    tau: float = option(0.005, "Polyak rate τ of the target networks.", low=0, high=1, low_open=True)
    alpha: float = option(2.5, "TD3+BC's α: the actor loss is −λ·mean Q1 + MSE(π(s), a), λ = α / mean|Q1| "
                          "(0: behaviour cloning).", low=0)
    policy_noise: float = option(0.2, "Target policy noise σ, as a fraction of max_action.", low=0)
    noise_clip: float = option(0.5, "Clip of the target policy noise, as a fraction of max_action.", low=0)
    policy_freq: int = option(2, "Actor and target updates every this many critic steps.", low=1)
    normalize_obs: bool = option(True, "Normalize observations with the dataset's mean / (std + 1e-3).")


class DeterministicActor(nn.Module):
    """π(s) = max_action·tanh(f(s))."""

    act_dim: int
    max_action: float
    hidden: Tuple[int, ...] = (256, 256)
    init_scheme: str = "torch"
    compute_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs):
        x = MLP(self.hidden, self.act_dim, self.init_scheme, self.compute_dtype, name="net")(obs)
        return self.max_action * jnp.tanh(x)


@struct.dataclass
class ActorBatch:
    """The actor's loss inputs: states and the dataset's actions."""

    obs: jax.Array
    action: jax.Array


@dataclasses.dataclass(frozen=True)
class TD3BC(Algorithm):
    """TD3+BC as pure functions."""

    config: TD3BCConfig
    network_specs: ClassVar[Tuple[NetworkSpec, ...]] = (
        NetworkSpec("actor", "actor_hidden", target=True, acts=("",)),
        NetworkSpec("critic", "critic_hidden", twin=True, target=True))
    metric_names: ClassVar[Tuple[str, ...]] = ("critic_loss", "actor_loss", "lambda")

    @property
    def actor(self) -> DeterministicActor:
        c = self.config
        return DeterministicActor(self.act_dim, self.max_action, c.actor_hidden, c.init_scheme, c.dtype)

    @property
    def critic(self) -> Critic:
        c = self.config
        return Critic(c.critic_hidden, c.init_scheme, c.dtype)

    def optimizers(self) -> Dict[str, optax.GradientTransformation]:
        return {k: optax.adam(self.config.lr) for k in self.networks}

    def init_params(self, key: jax.Array) -> Dict[str, Any]:
        k_actor, k_q1, k_q2 = jax.random.split(key, 3)
        obs = jnp.zeros((1, self.obs_dim), jnp.float32)
        act = jnp.zeros((1, self.act_dim), jnp.float32)
        params = {"actor": self.actor.init(k_actor, obs)["params"],
                  "critic": twin_init(self.critic, (k_q1, k_q2), obs, act)}
        return jax.tree_util.tree_map(lambda x: x, params)

    # ---- losses ---------------------------------------------------------------------------
    def critic_target(self, target_params, batch: Transitions, key) -> jax.Array:
        """y = r + γ(1 − d)·min(Q1', Q2')(s', ã), ã = clip(π'(s') + clip(ε, ±c), ±max_action),
        ε ~ N(0, σ²); σ, c in units of max_action. A constant for the critic."""
        c, m = self.config, self.max_action
        a_next = self.actor.apply({"params": target_params["actor"]}, batch.next_obs)
        eps = jnp.clip(c.policy_noise * m * jax.random.normal(key, a_next.shape), -c.noise_clip * m, c.noise_clip * m)
        a_next = jnp.clip(a_next + eps, -m, m)
        q1 = self.critic.apply({"params": target_params["critic"]["q1"]}, batch.next_obs, a_next)
        q2 = self.critic.apply({"params": target_params["critic"]["q2"]}, batch.next_obs, a_next)
        y = batch.reward + c.discount * (1.0 - batch.done) * jnp.minimum(q1, q2)
        return jax.lax.stop_gradient(y)

    def actor_loss_fn(self, q1_params):
        """L(π) = −λ·mean Q1(s, π(s)) + mean (π(s) − a)², λ = α / mean|Q1(s, π(s))| (held constant)."""

        def loss(p, b: ActorBatch):
            pi = self.actor.apply({"params": p}, b.obs)
            q = self.critic.apply({"params": q1_params}, b.obs, pi)
            lmbda = jax.lax.stop_gradient(self.config.alpha / jnp.mean(jnp.abs(q)))
            return -lmbda * jnp.mean(q) + jnp.mean(jnp.square(pi - b.action))

        return loss

    def _lambda(self, actor_params, q1_params, obs):
        q = self.critic.apply({"params": q1_params}, obs, self.actor.apply({"params": actor_params}, obs))
        return self.config.alpha / jnp.mean(jnp.abs(q))

    def scoring_problems(self, params, batch: Transitions, key) -> Dict[str, Tuple[Any, Any, Any]]:
        """The actor on its own loss (Q1 fixed); Q1 on MSE(Q1, y), y from the initial networks."""
        y = self.critic_target(params, batch, key)
        return {
            "actor": (self.actor_loss_fn(params["critic"]["q1"]), params["actor"], ActorBatch(batch.obs, batch.action)),
            "critic": (lambda p, b: losses.q_loss(self.critic, p, b), params["critic"]["q1"],
                       losses.CriticBatch(batch.obs, batch.action, y)),
        }

    # ---- training -------------------------------------------------------------------------
    def train_step(self, state: TrainState, batch: Transitions, key: jax.Array):
        """One TD3+BC iteration (``TD3_BC.train``): critic every step; on every
        ``policy_freq``-th step the actor, then Polyak targets.

        ``actor_loss`` and ``lambda`` are reported ×policy_freq on actor steps and 0 between,
        so their mean over a chunk (a multiple of policy_freq steps) is their mean over actor steps.
        """
        c = self.config
        chex.assert_rank(batch.obs, 2)
        batch = self.normalize_batch((state.obs_mean, state.obs_std), batch)
        params, opt, targets = dict(state.params), dict(state.opt_state), state.target_params
        y = self.critic_target(targets, batch, key)
        params["critic"], opt["critic"], critic_loss = self.update(
            "critic", lambda p, b: losses.critic_loss(self.critic, p, b), params["critic"], opt["critic"],
            losses.CriticBatch(batch.obs, batch.action, y))

        def actor_step(operand):
            actor_p, actor_o, tgt = operand
            q1 = params["critic"]["q1"]
            lam = self._lambda(actor_p, q1, batch.obs)
            actor_p, actor_o, loss = self.update("actor", self.actor_loss_fn(q1), actor_p, actor_o,
                                                 ActorBatch(batch.obs, batch.action))
            tgt = self.polyak(tgt, {"actor": actor_p, "critic": params["critic"]})
            return actor_p, actor_o, tgt, loss * c.policy_freq, lam * c.policy_freq

        def skip(operand):
            actor_p, actor_o, tgt = operand
            return actor_p, actor_o, tgt, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)

        do_actor = (state.step + 1) % c.policy_freq == 0  # the authors' total_it counts from 1
        params["actor"], opt["actor"], targets, actor_loss, lam = jax.lax.cond(
            do_actor, actor_step, skip, (params["actor"], opt["actor"], targets))
        metrics = {"critic_loss": critic_loss, "actor_loss": actor_loss, "lambda": lam}
        return state.replace(params=params, target_params=targets, opt_state=opt, step=state.step + 1), metrics

    # ---- acting ---------------------------------------------------------------------------
    def acting_program(self) -> Dict[str, Any]:
        return {"ops": [{"op": "mlp", "net": "actor/net", "layer": "l", "in": ["obs"], "out": "h"},
                        {"op": "tanh", "x": "h", "scale": self.max_action, "out": "action"}],
                "output": "action"}
