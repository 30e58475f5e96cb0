"""IQL (Kostrikov, Nair, Levine 2021, "Offline Reinforcement Learning with Implicit Q-Learning").

Defaults are the authors' locomotion config (their code, ``ikostrikov/implicit_q_learning``):
256-256 networks with orthogonal √2 kernels and zero biases, expectile τ = 0.7, temperature
β = 3, advantage weights clipped at 100, Adam 3e-4 with the actor's rate on a cosine decay over
the run, Polyak 0.005 for the target critic, rewards scaled by 1000 / (max − min episode return).

State layout::

    params        = {"actor": {"net", "log_std"}, "critic": {"q1", "q2"}, "value": {"net"}}
    target_params = {"critic": ...}

Pruning at init scores three networks, each on its own loss at the initial weights: V on the
expectile loss (q from the initial = target critic, a constant), the actor on the advantage-
weighted log-likelihood (q and V constants), Q1 on MSE(Q1, y) with y = r + γ(1 − d)·V(s′) a
constant; Q2 takes Q1's mask, and the target critic starts masked.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Optional, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from sparse_orl.algos import losses
from sparse_orl.algos.base import INIT_SCHEMES, AlgoConfig, Algorithm, NetworkSpec, TrainState, twin_init
from sparse_orl.data.transitions import Transitions
from sparse_orl.algos.networks import MLP, Critic
from sparse_orl.fields import option


@dataclasses.dataclass(frozen=True)
class IQLConfig(AlgoConfig):
    """Hyperparameters of IQL; defaults are the authors' MuJoCo locomotion config."""

    algo: ClassVar[str] = "iql"
    actor_hidden: Tuple[int, ...] = option((256, 256), "Actor hidden sizes.", low=1)
    critic_hidden: Tuple[int, ...] = option((256, 256), "Critic (each Q-network) hidden sizes.", low=1)
    value_hidden: Tuple[int, ...] = option((256, 256), "Value network hidden sizes.", low=1)
    lr: float = option(3e-4, "Adam learning rate of actor, critic and value (the actor's decays).", low=0,
                       low_open=True)
    discount: float = option(0.99, "Discount γ.", low=0, high=1)
    tau: float = option(0.005, "Polyak rate τ of the target networks.", low=0, high=1, low_open=True)
    expectile: float = option(0.7, "Expectile τ of the value loss.", low=0, high=1, low_open=True, high_open=True)
    temperature: float = option(3.0, "Inverse temperature β of the advantage weights exp(β·(q − V)) (0: "
                                "behaviour cloning).", low=0)
    max_weight: float = option(100.0, "Clip of the advantage weights.", low=0, low_open=True)
    actor_lr_decay_steps: Optional[int] = option(None, "Steps of the actor's cosine learning-rate decay "
                                                 "(default: the run's --steps).", low=1)
    scale_rewards: bool = option(True, "Rewards times 1000 / (max - min episode return) of the dataset.")
    init_scheme: str = option("orthogonal", "Weight init: torch = U(±1/sqrt(fan_in)) (PyTorch default), "
                              "flax = lecun_normal kernels, zero biases, orthogonal = orthogonal kernels of "
                              "scale sqrt(2), zero biases (IQL's authors).", flag="init", choices=INIT_SCHEMES)

    def for_run(self, steps: int) -> "IQLConfig":
        """The actor's cosine decay spans the run unless ``actor_lr_decay_steps`` says otherwise."""
        if self.actor_lr_decay_steps is not None:
            return self
        return dataclasses.replace(self, actor_lr_decay_steps=int(steps))


LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class GaussianActor(nn.Module):
    """mean = tanh(f(s)); a state-independent log std (init 0), clipped to [−5, 2] when used."""

    act_dim: int
    hidden: Tuple[int, ...] = (256, 256)
    init_scheme: str = "orthogonal"
    compute_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs):
        mean = jnp.tanh(MLP(self.hidden, self.act_dim, self.init_scheme, self.compute_dtype, name="net")(obs))
        log_std = self.param("log_std", nn.initializers.zeros_init(), (self.act_dim,), jnp.float32)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


class ValueNet(nn.Module):
    hidden: Tuple[int, ...] = (256, 256)
    init_scheme: str = "orthogonal"
    compute_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden, 1, self.init_scheme, self.compute_dtype, name="net")(obs)[..., 0]


@struct.dataclass
class ValueBatch:
    obs: jax.Array
    q: jax.Array  # (B,) min of the target critic at (s, a): a constant


@struct.dataclass
class ActorBatch:
    obs: jax.Array
    action: jax.Array
    weight: jax.Array  # (B,) min(exp(β·(q − V(s))), max_weight): a constant


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """mean(|τ − 1(u < 0)|·u²), u = q − V (IQL Eq. 5)."""
    w = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return jnp.mean(w * jnp.square(diff))


def gaussian_log_prob(mean, log_std, action) -> jax.Array:
    """log N(a; mean, diag(exp(log_std))²), summed over action dimensions."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * jnp.square(z) - log_std - 0.5 * jnp.log(2.0 * jnp.pi), axis=-1)


def episode_returns(t: Transitions) -> np.ndarray:
    """Undiscounted returns of the dataset's episodes. An episode ends where it terminated or where
    the next row does not continue it (next_obs[i] != obs[i+1]), the authors' rule."""
    obs, nxt = np.asarray(t.obs), np.asarray(t.next_obs)
    ends = np.asarray(t.done) > 0
    ends[:-1] |= np.any(nxt[:-1] != obs[1:], axis=-1)
    ends[-1] = True
    returns, acc = [], 0.0
    for r, e in zip(np.asarray(t.reward, np.float64), ends):
        acc += r
        if e:
            returns.append(acc)
            acc = 0.0
    return np.asarray(returns)


@dataclasses.dataclass(frozen=True)
class IQL(Algorithm):
    config: IQLConfig
    network_specs: ClassVar[Tuple[NetworkSpec, ...]] = (
        NetworkSpec("actor", "actor_hidden", acts=("",)),
        NetworkSpec("critic", "critic_hidden", twin=True, target=True),
        NetworkSpec("value", "value_hidden"))
    metric_names: ClassVar[Tuple[str, ...]] = ("value_loss", "actor_loss", "critic_loss")

    @property
    def actor(self) -> GaussianActor:
        c = self.config
        return GaussianActor(self.act_dim, c.actor_hidden, c.init_scheme, c.dtype)

    @property
    def critic(self) -> Critic:
        c = self.config
        return Critic(c.critic_hidden, c.init_scheme, c.dtype)

    @property
    def value(self) -> ValueNet:
        c = self.config
        return ValueNet(c.value_hidden, c.init_scheme, c.dtype)

    def optimizers(self) -> Dict[str, optax.GradientTransformation]:
        c = self.config
        decay = c.actor_lr_decay_steps or 1_000_000
        return {"actor": optax.adam(optax.cosine_decay_schedule(c.lr, decay)),
                "critic": optax.adam(c.lr), "value": optax.adam(c.lr)}

    def init_params(self, key: jax.Array) -> Dict[str, Any]:
        k_actor, k_q1, k_q2, k_v = jax.random.split(key, 4)
        obs = jnp.zeros((1, self.obs_dim), jnp.float32)
        act = jnp.zeros((1, self.act_dim), jnp.float32)
        params = {"actor": self.actor.init(k_actor, obs)["params"],
                  "critic": twin_init(self.critic, (k_q1, k_q2), obs, act),
                  "value": self.value.init(k_v, obs)["params"]}
        return jax.tree_util.tree_map(lambda x: x, params)

    def preprocess(self, transitions: Transitions, info) -> Transitions:
        """Rewards × 1000 / (max − min episode return) (``train_offline.normalize``), when on."""
        if not self.config.scale_rewards:
            return transitions
        rets = episode_returns(transitions)
        spread = float(rets.max() - rets.min()) if rets.size > 1 else 0.0
        if spread <= 0:
            raise ValueError("IQL reward scaling needs episodes of different returns (pass --noscale_rewards)")
        return transitions.replace(reward=(np.asarray(transitions.reward) * (1000.0 / spread)).astype(np.float32))

    # ---- losses ---------------------------------------------------------------------------
    def q_min(self, critic_params, obs, action):
        q1 = self.critic.apply({"params": critic_params["q1"]}, obs, action)
        q2 = self.critic.apply({"params": critic_params["q2"]}, obs, action)
        return jnp.minimum(q1, q2)

    def value_loss(self, p, b: ValueBatch):
        return expectile_loss(b.q - self.value.apply({"params": p}, b.obs), self.config.expectile)

    def actor_loss(self, p, b: ActorBatch):
        """−mean(w · log π(a|s)) (IQL Eq. 7, advantage-weighted regression)."""
        mean, log_std = self.actor.apply({"params": p}, b.obs)
        return -jnp.mean(b.weight * gaussian_log_prob(mean, log_std, b.action))

    def weights(self, q, v):
        c = self.config
        return jax.lax.stop_gradient(jnp.minimum(jnp.exp(c.temperature * (q - v)), c.max_weight))

    def td_target(self, value_params, batch: Transitions):
        v_next = self.value.apply({"params": value_params}, batch.next_obs)
        return jax.lax.stop_gradient(batch.reward + self.config.discount * (1.0 - batch.done) * v_next)

    def scoring_problems(self, params, batch: Transitions, key):
        """Each network's own loss at init; the other networks' outputs are constants computed first."""
        q = jax.lax.stop_gradient(self.q_min(params["critic"], batch.obs, batch.action))
        v = self.value.apply({"params": params["value"]}, batch.obs)
        return {
            "value": (self.value_loss, params["value"], ValueBatch(batch.obs, q)),
            "actor": (self.actor_loss, params["actor"], ActorBatch(batch.obs, batch.action, self.weights(q, v))),
            "critic": (lambda p, b: losses.q_loss(self.critic, p, b), params["critic"]["q1"],
                       losses.CriticBatch(batch.obs, batch.action, self.td_target(params["value"], batch))),
        }

    # ---- training -------------------------------------------------------------------------
    def train_step(self, state: TrainState, batch: Transitions, key: jax.Array):
        """One IQL step (``learner.update``): V, actor, critic, then the target critic."""
        chex.assert_rank(batch.obs, 2)
        batch = self.normalize_batch((state.obs_mean, state.obs_std), batch)
        params, opt = dict(state.params), dict(state.opt_state)
        q = jax.lax.stop_gradient(self.q_min(state.target_params["critic"], batch.obs, batch.action))
        params["value"], opt["value"], v_loss = self.update(
            "value", self.value_loss, params["value"], opt["value"], ValueBatch(batch.obs, q))
        v = self.value.apply({"params": params["value"]}, batch.obs)
        params["actor"], opt["actor"], a_loss = self.update(
            "actor", self.actor_loss, params["actor"], opt["actor"],
            ActorBatch(batch.obs, batch.action, self.weights(q, v)))
        params["critic"], opt["critic"], c_loss = self.update(
            "critic", lambda p, b: losses.critic_loss(self.critic, p, b), params["critic"], opt["critic"],
            losses.CriticBatch(batch.obs, batch.action, self.td_target(params["value"], batch)))
        targets = self.polyak(state.target_params, params)
        metrics = {"value_loss": v_loss, "actor_loss": a_loss, "critic_loss": c_loss}
        return state.replace(params=params, target_params=targets, opt_state=opt, step=state.step + 1), metrics

    # ---- acting ---------------------------------------------------------------------------
    def acting_program(self) -> Dict[str, Any]:
        """The Gaussian's mean tanh(f(s)) (the authors evaluate at temperature 0), clipped to ±max_action."""
        m = self.max_action
        return {"ops": [{"op": "mlp", "net": "actor/net", "layer": "l", "in": ["obs"], "out": "h"},
                        {"op": "tanh", "x": "h", "out": "mean"},
                        {"op": "clip", "x": "mean", "lo": -m, "hi": m, "out": "action"}],
                "output": "action"}
