"""BCQ (Fujimoto, Meger, Precup 2019), continuous version, on the algorithm interface.

State layout (plain pytrees)::

    params        = {"actor": ..., "critic": {"q1": ..., "q2": ...}, "vae": ...}
    target_params = {"actor": ..., "critic": {...}}

Pruning at init scores three networks, each on its own loss: the VAE
on its ELBO, Q1 on MSE(Q1, y) with y from the initial networks (a constant; Q2 takes
Q1's mask), and the actor on −Q1(s, ξ(s, G(s))) with the VAE's sample a constant.
:mod:`sparse_orl.algos.bc` is BEAR's cloning variant of the same agent.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Optional, Tuple

import chex
import jax
import jax.numpy as jnp
import optax

from sparse_orl import pruning
from sparse_orl.algos import losses
from sparse_orl.algos.base import AlgoConfig, Algorithm, NetworkSpec, TrainState, twin_init
from sparse_orl.data.transitions import Transitions
from sparse_orl.algos.networks import VAE, Actor, Critic
from sparse_orl.fields import option
from sparse_orl.algos import vae_diagnostics


VAE_SCORES = ("train", "acting")


@dataclasses.dataclass(frozen=True)
class BCQConfig(AlgoConfig):
    """Hyperparameters of BCQ (Fujimoto, Meger, Precup 2019; ``sfujim/BCQ``). Defaults are the paper's."""

    algo: ClassVar[str] = "bcq"
    actor_hidden: Tuple[int, ...] = option((400, 300), "Actor (perturbation model) hidden sizes.", low=1)
    critic_hidden: Tuple[int, ...] = option((400, 300), "Critic (each Q-network) hidden sizes.", low=1)
    vae_hidden: Tuple[int, ...] = option((750, 750), "VAE encoder/decoder hidden sizes.", low=1)
    latent_dim: Optional[int] = option(None, "VAE latent size (default 2 * action dim).", low=1)
    phi: float = option(0.05, "Perturbation range φ of the actor, as a fraction of max_action.", low=0, high=1)
    lmbda: float = option(0.75, "Soft clipped double-Q weight λ of min(Q1, Q2) in the target.", low=0, high=1)
    discount: float = option(0.99, "Discount γ.", low=0, high=1)
    tau: float = option(0.005, "Polyak rate τ of the target networks.", low=0, high=1, low_open=True)
    lr: float = option(1e-3, "Adam learning rate of all networks.", low=0, low_open=True)
    kl_weight: float = option(0.5, "Weight of the VAE's KL term.", low=0)
    num_target_samples: int = option(10, "Repeated next-state samples in the critic target.", low=1)
    num_act_samples: int = option(10, "BCQ acting: candidates scored by Q1 (BCQ HEAD uses 100).", low=1)
    train_latent_clip: float = option(0.5, "|z| clip of the VAE's latents in training and BCQ acting.", low=0)
    added_later: ClassVar[Tuple[str, ...]] = ("vae_score",)
    vae_score: str = option("train", "Loss that SNIP/GraSP score the VAE decoder with: its training loss, or "
                            "the acting loss MSE(decode(s, z ~ clipped prior), a) (label +acting).",
                            choices=VAE_SCORES)

    def label_suffix(self, pruner_uses_loss: bool) -> str:
        """What this config adds to a pruning method's label: "+acting" where the decoder's scores
        come from the acting loss."""
        return "+acting" if pruner_uses_loss and self.vae_score == "acting" else ""

    def check_prunes(self, prunes) -> None:
        """``vae_score`` other than "train" needs a loss-scoring method (SNIP, GraSP) that prunes the VAE."""
        if self.vae_score == "train":
            return
        if not any(p.uses_loss for p in prunes):
            raise ValueError(f"--vae_score={self.vae_score} changes the masks of SNIP and GraSP only; none of "
                             f"--pruner={','.join(p.label for p in prunes)} scores a loss")
        for p in prunes:
            if p.uses_loss and p.prune_networks and "vae" not in p.prune_networks:
                raise ValueError(f"--vae_score={self.vae_score} changes only the VAE's mask, which "
                                 f"--prune_networks={','.join(p.prune_networks)} leaves dense")


@dataclasses.dataclass(frozen=True)
class BCQ(Algorithm):
    """BCQ as pure functions: critic targets use perturbed VAE samples; acting takes the
    argmax of Q1 over ``num_act_samples`` perturbed candidates."""

    config: BCQConfig

    # ---- networks -----------------------------------------------------------
    @property
    def network_specs(self) -> Tuple[NetworkSpec, ...]:
        return (NetworkSpec("actor", "actor_hidden", target=True, acts=("",)),
                NetworkSpec("critic", "critic_hidden", twin=True, target=True, acts=("q1",)),
                NetworkSpec("vae", "vae_hidden", acts=("",), title="VAE"))

    @property
    def metric_names(self) -> Tuple[str, ...]:
        return ("vae_loss", "critic_loss", "actor_loss") if "actor" in self.networks else ("vae_loss",)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim or 2 * self.act_dim

    @property
    def actor(self) -> Actor:
        c = self.config
        return Actor(self.act_dim, self.max_action, c.actor_hidden, c.phi, c.init_scheme, c.dtype)

    @property
    def critic(self) -> Critic:
        c = self.config
        return Critic(c.critic_hidden, c.init_scheme, c.dtype)

    @property
    def vae(self) -> VAE:
        c = self.config
        return VAE(self.act_dim, self.latent_dim, self.max_action, c.vae_hidden, c.init_scheme, c.dtype)

    def optimizers(self) -> Dict[str, optax.GradientTransformation]:
        return {k: optax.adam(self.config.lr) for k in self.networks}

    def init_params(self, key: jax.Array) -> Dict[str, Any]:
        """Dense initial params for every network. Depends on ``key`` only."""
        k_actor, k_q1, k_q2, k_vae = jax.random.split(key, 4)
        obs = jnp.zeros((1, self.obs_dim), jnp.float32)
        act = jnp.zeros((1, self.act_dim), jnp.float32)
        lat = jnp.zeros((1, self.latent_dim), jnp.float32)
        params = {"vae": self.vae.init(k_vae, obs, act, lat)["params"]}
        if "actor" in self.networks:
            params["actor"] = self.actor.init(k_actor, obs, act)["params"]
            params["critic"] = twin_init(self.critic, (k_q1, k_q2), obs, act)
        return jax.tree_util.tree_map(lambda x: x, params)  # plain dicts

    # ---- pieces used by both the train step and the scorers ----------------
    def decode(self, vae_params, obs, z):
        return self.vae.apply({"params": vae_params}, obs, z, method=VAE.decode)

    def clipped_latent(self, key, shape, clip):
        return jnp.clip(jax.random.normal(key, shape + (self.latent_dim,)), -clip, clip)

    def next_actions(self, actor_target, vae_params, next_obs_rep, z):
        """a'_j = ξ_target(s', G(s', z_j)) for each of the repeated next states."""
        return self.actor.apply({"params": actor_target}, next_obs_rep, self.decode(vae_params, next_obs_rep, z))

    def critic_target_values(self, target_params, vae_params, batch: Transitions, z) -> jax.Array:
        """y = r + γ(1 − d)·max_j [λ min(Q1', Q2') + (1 − λ) max(Q1', Q2')](s', a'_j).

        ``z`` is (B, n, latent): the clipped latents of the n repeated next-state
        samples. Everything here is a constant for the critic update.
        """
        c = self.config
        n = z.shape[1]
        s_rep = jnp.broadcast_to(batch.next_obs[:, None, :], (batch.next_obs.shape[0], n, self.obs_dim))
        a_next = self.next_actions(target_params.get("actor"), vae_params, s_rep, z)
        q1 = self.critic.apply({"params": target_params["critic"]["q1"]}, s_rep, a_next)
        q2 = self.critic.apply({"params": target_params["critic"]["q2"]}, s_rep, a_next)
        q = losses.soft_clipped_double_q(q1, q2, c.lmbda)
        return jax.lax.stop_gradient(losses.td_target(batch.reward, batch.done, q, c.discount))

    # ---- losses in the (params, batch) form --------------------------------
    def vae_loss(self, params, batch: losses.VAEBatch):
        return losses.vae_loss(self.vae, params, batch, self.config.kl_weight)

    def q_loss(self, params, batch: losses.CriticBatch):
        return losses.q_loss(self.critic, params, batch)

    def critic_loss(self, params, batch: losses.CriticBatch):
        return losses.critic_loss(self.critic, params, batch)

    def actor_loss_fn(self, q1_params):
        return lambda p, b: losses.actor_loss(self.actor, self.critic, p, q1_params, b)

    # ---- pruning at init ------------------------------------------------------
    def scoring_problems(self, params, batch: Transitions, key) -> Dict[str, Tuple[Any, Any, Any]]:
        """{network: (loss_fn, params, batch)}: each network's own loss at init.

        The critic is scored on Q1 alone (:meth:`expand_masks` copies its mask to
        Q2); its target y comes from the initial (= target) networks and is a
        constant. The actor's loss sees the VAE's sample as a constant and Q1 as fixed.
        """
        k_eps, k_tgt, k_act = jax.random.split(key, 3)
        b = batch.obs.shape[0]
        problems = {
            "vae": (
                self.vae_loss,
                params["vae"],
                losses.VAEBatch(batch.obs, batch.action, jax.random.normal(k_eps, (b, self.latent_dim))),
            )
        }
        if "actor" in self.networks:
            c = self.config
            z_t = self.clipped_latent(k_tgt, (b, c.num_target_samples), c.train_latent_clip)
            y = self.critic_target_values(params, params["vae"], batch, z_t)
            problems["critic"] = (self.q_loss, params["critic"]["q1"], losses.CriticBatch(batch.obs, batch.action, y))
            z_a = self.clipped_latent(k_act, (b,), c.train_latent_clip)
            sampled = jax.lax.stop_gradient(self.decode(params["vae"], batch.obs, z_a))
            problems["actor"] = (
                self.actor_loss_fn(params["critic"]["q1"]),
                params["actor"],
                losses.ActorBatch(batch.obs, sampled),
            )
        return problems

    def network_paths(self, name: str, net_params) -> Tuple[Any, ...]:
        """Kernel paths input -> output of network ``name`` (SynFlow, dead-unit diagnostics).

        Actor and critic: one path net/l1 -> ... -> net/lL. VAE: two paths,
        encoder e1 -> ... -> (mean, log_std) and decoder d1 -> ... -> d(H+1).
        """
        if name in ("actor", "critic"):
            return pruning.mlp_paths(net_params["net"], ("net",))
        if name == "vae":
            h = len(self.config.vae_hidden)
            enc = pruning.sequential_paths([f"e{i + 1}" for i in range(h)], ("mean", "log_std"))
            dec = pruning.sequential_paths([f"d{i + 1}" for i in range(h + 1)])
            return (enc, dec)
        raise ValueError(f"unknown network {name!r}")

    def diagnostics(self, params, masks, data, key, obs_mean, obs_std, num_samples: int):
        """The VAE decoder's input mass (state vs latent rows) and its reliance on z."""

        return vae_diagnostics.diagnose_vae(self, params, masks, data, key, obs_mean, obs_std, num_samples)

    @property
    def acting_latent_clip(self) -> float:
        """|z| clip when acting (BCQ: ±train_latent_clip)."""
        return self.config.train_latent_clip

    def rerank_problems(self, params, batch: Transitions, key, prune) -> Optional[Dict]:
        """With ``vae_score="acting"``: the decoder re-ranked by the loss of acting.

        L = MSE(decode(s, z), a) over dataset (s, a), z ~ N(0, I) clipped to
        ±:attr:`acting_latent_clip` (the prior; no encoder). The latents ride in
        ``VAEBatch.eps`` so the loss is deterministic given the batch.
        """
        if self.config.vae_score != "acting" or not prune.uses_loss:
            return None
        z = self.clipped_latent(jax.random.fold_in(key, 1), (batch.obs.shape[0],), self.acting_latent_clip)

        def loss(p, b: losses.VAEBatch):
            return jnp.mean(jnp.square(self.decode(p, b.obs, b.eps) - b.action))

        problem = (loss, params["vae"], losses.VAEBatch(batch.obs, batch.action, z))
        return {"vae": (lambda k: k.startswith("d"), problem)}

    # ---- training ---------------------------------------------------------------
    def train_step(self, state: TrainState, batch: Transitions, key: jax.Array):
        """One BCQ iteration: VAE, critic, actor updates, then Polyak targets.

        Order and losses follow ``BCQ.train`` of sfujim/BCQ: the critic target
        uses the just-updated VAE, the actor loss the just-updated critic.
        """
        c = self.config
        chex.assert_rank(batch.obs, 2)
        b = batch.obs.shape[0]
        batch = self.normalize_batch((state.obs_mean, state.obs_std), batch)
        k_eps, k_tgt, k_act = jax.random.split(key, 3)
        params, opt = dict(state.params), dict(state.opt_state)
        metrics = {}

        vae_batch = losses.VAEBatch(batch.obs, batch.action, jax.random.normal(k_eps, (b, self.latent_dim)))
        params["vae"], opt["vae"], metrics["vae_loss"] = self.update(
            "vae", self.vae_loss, params["vae"], opt["vae"], vae_batch)
        targets = state.target_params
        if "actor" in self.networks:
            z_t = self.clipped_latent(k_tgt, (b, c.num_target_samples), c.train_latent_clip)
            y = self.critic_target_values(targets, params["vae"], batch, z_t)
            params["critic"], opt["critic"], metrics["critic_loss"] = self.update(
                "critic", self.critic_loss, params["critic"], opt["critic"],
                losses.CriticBatch(batch.obs, batch.action, y))
            z_a = self.clipped_latent(k_act, (b,), c.train_latent_clip)
            sampled = jax.lax.stop_gradient(self.decode(params["vae"], batch.obs, z_a))
            params["actor"], opt["actor"], metrics["actor_loss"] = self.update(
                "actor", self.actor_loss_fn(params["critic"]["q1"]), params["actor"], opt["actor"],
                losses.ActorBatch(batch.obs, sampled))
            targets = self.polyak(targets, params)
        new_state = state.replace(params=params, target_params=targets, opt_state=opt, step=state.step + 1)
        return new_state, metrics

    # ---- acting -------------------------------------------------------------------
    def acting_program(self) -> Dict[str, Any]:
        """argmax_j Q1(s, ξ(s, G(s, z_j))) over ``num_act_samples`` clipped latents z_j, as data."""
        c, m = self.config, self.max_action
        n = c.num_act_samples
        return {
            "noise": {"z": {"shape": [n, self.latent_dim], "clip": c.train_latent_clip}},
            "ops": [
                {"op": "repeat", "x": "obs", "n": n, "out": "s"},
                {"op": "mlp", "net": "vae", "layer": "d", "in": ["s", "z"], "out": "h"},
                {"op": "tanh", "x": "h", "scale": m, "out": "a0"},
                {"op": "mlp", "net": "actor/net", "layer": "l", "in": ["s", "a0"], "out": "delta"},
                {"op": "tanh", "x": "delta", "scale": c.phi * m, "out": "d"},
                {"op": "add", "x": "a0", "y": "d", "out": "a1"},
                {"op": "clip", "x": "a1", "lo": -m, "hi": m, "out": "cand"},
                {"op": "mlp", "net": "critic/q1/net", "layer": "l", "in": ["s", "cand"], "squeeze": True, "out": "q"},
                {"op": "argmax_select", "score": "q", "values": "cand", "out": "action"},
            ],
            "output": "action",
        }
