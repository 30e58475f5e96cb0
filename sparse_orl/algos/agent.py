"""The agent shared by BCQ and BC: init with pruning at init, masked train step, acting.

State layout (plain pytrees)::

    params        = {"actor": ..., "critic": {"q1": ..., "q2": ...}, "vae": ...}
    target_params = {"actor": ..., "critic": {...}}      (absent networks are omitted)
    masks         = same structure as params, float32 0/1

Masks are data: pruned weights are multiplied out after every update and their
gradients are zeroed before Adam, so online params, targets (Polyak from masked
params) and both Adam moments stay exactly 0.0 at pruned positions.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Tuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from sparse_orl import pruning
from sparse_orl.algos import losses
from sparse_orl.config import AgentConfig, PruneConfig
from sparse_orl.data.transitions import Transitions, sample_batch
from sparse_orl.networks import VAE, Actor, Critic


@struct.dataclass
class AgentState:
    params: Dict[str, Any]
    target_params: Dict[str, Any]
    masks: Dict[str, Any]
    opt_state: Dict[str, Any]
    obs_mean: jax.Array  # (obs_dim,) observation normalization (0 / 1 when off)
    obs_std: jax.Array
    step: jax.Array  # int32 gradient steps taken


def _mul(tree, masks):
    return jax.tree_util.tree_map(lambda x, m: x * m, tree, masks)


@dataclasses.dataclass(frozen=True)
class Agent:
    """BCQ (Fujimoto et al. 2019) and its cloning variant BC, as pure functions.

    Subclasses choose the critic's next-state actions and how to act.
    """

    config: AgentConfig
    obs_dim: int
    act_dim: int
    max_action: float

    # ---- networks -----------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim or 2 * self.act_dim

    @property
    def _dtype(self):
        return jnp.bfloat16 if self.config.compute_dtype == "bfloat16" else jnp.float32

    @property
    def actor(self) -> Actor:
        c = self.config
        return Actor(self.act_dim, self.max_action, c.actor_hidden, c.phi, c.init_scheme, self._dtype)

    @property
    def critic(self) -> Critic:
        c = self.config
        return Critic(c.critic_hidden, c.init_scheme, self._dtype)

    @property
    def vae(self) -> VAE:
        c = self.config
        return VAE(self.act_dim, self.latent_dim, self.max_action, c.vae_hidden, c.init_scheme, self._dtype)

    @property
    def tx(self) -> optax.GradientTransformation:
        return optax.adam(self.config.lr)

    @property
    def networks(self) -> Tuple[str, ...]:
        return self.config.networks

    def init_params(self, key: jax.Array) -> Dict[str, Any]:
        """Dense initial params for every network. Depends on ``key`` only."""
        k_actor, k_q1, k_q2, k_vae = jax.random.split(key, 4)
        obs = jnp.zeros((1, self.obs_dim), jnp.float32)
        act = jnp.zeros((1, self.act_dim), jnp.float32)
        lat = jnp.zeros((1, self.latent_dim), jnp.float32)
        params = {"vae": self.vae.init(k_vae, obs, act, lat)["params"]}
        if not self.config.vae_only:
            params["actor"] = self.actor.init(k_actor, obs, act)["params"]
            params["critic"] = {
                "q1": self.critic.init(k_q1, obs, act)["params"],
                "q2": self.critic.init(k_q2, obs, act)["params"],
            }
        return jax.tree_util.tree_map(lambda x: x, params)  # plain dicts

    # ---- pieces used by both the train step and the scorers ----------------
    def normalize(self, obs_mean, obs_std, obs):
        if not self.config.normalize_obs:
            return obs
        return (obs - obs_mean) / obs_std

    def decode(self, vae_params, obs, z):
        return self.vae.apply({"params": vae_params}, obs, z, method=VAE.decode)

    def clipped_latent(self, key, shape, clip):
        return jnp.clip(jax.random.normal(key, shape + (self.latent_dim,)), -clip, clip)

    def next_actions(self, actor_target, vae_params, next_obs_rep, z):
        """Actions a' evaluated by the target critic at repeated next states (subclass)."""
        raise NotImplementedError

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

        The critic is scored on Q1 alone (its mask is then copied to Q2); its
        target y comes from the initial (= target) networks and is a constant.
        The actor's loss sees the VAE's sample as a constant and Q1 as fixed.
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
        if not self.config.vae_only:
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

    # ---- remedies: topology, acting-time scoring, warm-up ----------------------
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

    @property
    def acting_latent_clip(self) -> float:
        """|z| clip when acting: ±bc_act_latent_clip for BC, ±train_latent_clip for BCQ."""
        c = self.config
        return c.bc_act_latent_clip if c.algo == "bc" else c.train_latent_clip

    def acting_decoder_problem(self, vae_params, batch: Transitions, key):
        """(loss_fn, params, batch) scoring the decoder as it is used when acting.

        L = MSE(decode(s, z), a) over dataset (s, a), z ~ N(0, I) clipped to
        ±:attr:`acting_latent_clip` (the prior; no encoder). The latents ride in
        ``VAEBatch.eps`` so the loss is deterministic given the batch.
        """
        z = self.clipped_latent(key, (batch.obs.shape[0],), self.acting_latent_clip)

        def loss(p, b: losses.VAEBatch):
            return jnp.mean(jnp.square(self.decode(p, b.obs, b.eps) - b.action))

        return loss, vae_params, losses.VAEBatch(batch.obs, batch.action, z)

    @staticmethod
    def _expand_masks(params, net_masks):
        """Masks of the scored networks ({"critic": Q1's}) -> masks shaped like ``params``."""
        full = dict(net_masks)
        if "critic" in full:
            full["critic"] = {"q1": full["critic"], "q2": full["critic"]}
        return {k: full.get(k, pruning.ones_like_masks(params[k])) for k in params}

    def _network_mask(self, prune: PruneConfig, name, scores, sparsity, prev):
        """Mask of one network from its scores at ``sparsity`` (weights with prev = 0 excluded)."""
        alloc = dict(allocation=prune.allocation, min_layer_density=prune.min_layer_density)
        if isinstance(scores, dict) and set(scores) == {"train", "acting"}:
            # acting-time VAE scoring: the encoder mask and the decoder's total count come
            # from the training-loss ranking; the decoder weights are re-ranked by the
            # acting loss (with the same allocation rule inside the decoder).
            train = pruning.allocate_masks(pruning.exclude_pruned(scores["train"], prev), sparsity, **alloc)
            dec = [k for k in train if k.startswith("d")]
            k_dec = sum(jnp.sum(train[k]["kernel"]) for k in dec).astype(jnp.int32)
            acting = pruning.exclude_pruned({k: scores["acting"][k] for k in dec}, {k: prev[k] for k in dec})
            dec_masks = pruning.allocate_masks(acting, k=k_dec, **alloc)
            return {k: dec_masks[k] if k in dec_masks else train[k] for k in train}
        return pruning.allocate_masks(pruning.exclude_pruned(scores, prev), sparsity, **alloc)

    def compute_masks(self, params, data: Transitions, prune: PruneConfig, sparsity, key, obs_mean, obs_std):
        """One mask per network from its own importance scores at ``sparsity``.

        ``prune.allocation`` / ``min_layer_density`` split each network's budget
        across its layers; ``prune_iterations`` (SNIP/GraSP) and SynFlow rescore
        the masked params on an exponential schedule; ``vae_score="acting"``
        re-ranks the decoder by the acting loss. Every path keeps exactly
        n − round(s·n) kernel weights per network, for a traced ``sparsity`` too.
        """
        if prune.pruner == "none":
            return pruning.ones_like_masks(params)
        k_batch, k_noise, k_rand = jax.random.split(key, 3)
        scored = {name: (params["critic"]["q1"] if name == "critic" else params[name]) for name in self.networks}
        ones = {name: pruning.ones_like_masks(p) for name, p in scored.items()}

        def mask_fn(scores, s, prev):
            return {name: self._network_mask(prune, name, scores[name], s, prev[name]) for name in scores}

        if prune.pruner in ("snip", "grasp"):
            batch = sample_batch(data, k_batch, prune.score_batch)
            batch = batch.replace(
                obs=self.normalize(obs_mean, obs_std, batch.obs),
                next_obs=self.normalize(obs_mean, obs_std, batch.next_obs),
            )
            scorer = pruning.snip_scores if prune.pruner == "snip" else pruning.grasp_scores
            k_act = jax.random.fold_in(k_noise, 1)

            def score_fn(net_masks):
                p = _mul(params, self._expand_masks(params, net_masks))
                out = {}
                for name, (loss_fn, pp, b) in self.scoring_problems(p, batch, k_noise).items():
                    out[name] = scorer(loss_fn, pp, b)
                    if name == "vae" and prune.vae_score == "acting":
                        out[name] = {"train": out[name],
                                     "acting": scorer(*self.acting_decoder_problem(p["vae"], batch, k_act))}
                return out

            masks = pruning.iterative_masks(score_fn, mask_fn, ones, sparsity, prune.prune_iterations)
        elif prune.pruner == "synflow":
            def score_fn(net_masks):
                return {name: pruning.synflow_scores(_mul(p, net_masks[name]), self.network_paths(name, p))
                        for name, p in scored.items()}

            masks = pruning.iterative_masks(score_fn, mask_fn, ones, sparsity, prune.synflow_iterations)
        else:
            scores = {}
            for i, name in enumerate(self.networks):
                if prune.pruner == "magnitude":
                    scores[name] = pruning.magnitude_scores(scored[name])
                else:
                    scores[name] = pruning.random_scores(jax.random.fold_in(k_rand, i), scored[name])
            masks = mask_fn(scores, sparsity, ones)
        return self._expand_masks(params, masks)

    def warmup_params(self, params, data: Transitions, prune: PruneConfig, key, obs_mean, obs_std):
        """Params after ``prune.warmup_steps`` dense train steps (all-ones masks, fresh Adam).

        The same :meth:`train_step` as training, in a ``lax.scan``; batches of
        ``prune.warmup_batch`` are sampled from ``data`` inside the scan.
        """
        masks = pruning.ones_like_masks(params)
        targets = {k: params[k] for k in ("actor", "critic") if k in params}
        opt_state = {k: self.tx.init(v) for k, v in params.items()}
        state = AgentState(params, targets, masks, opt_state, obs_mean, obs_std, jnp.zeros((), jnp.int32))

        def body(st, k):
            k_b, k_s = jax.random.split(k)
            st, _ = self.train_step(st, sample_batch(data, k_b, prune.warmup_batch), k_s)
            return st, None

        state, _ = jax.lax.scan(body, state, jax.random.split(key, prune.warmup_steps))
        return state.params

    def init(self, key, data: Transitions, prune: PruneConfig, sparsity, obs_mean=None, obs_std=None) -> AgentState:
        """Initial state: dense init from ``key``, masks from ``prune`` at ``sparsity``.

        The init, the scoring batch and its noise depend on ``key`` only, so a
        seed gives the same initial weights (and nested masks) at every sparsity.
        With ``prune.warmup_steps > 0`` the masks are scored at the weights after
        a dense warm-up and applied to the initial weights (``warmup_rewind``,
        default) or to the warmed weights; Adam starts fresh either way.
        """
        k_init, k_prune = jax.random.split(key)
        if obs_mean is None:
            obs_mean = jnp.zeros((self.obs_dim,), jnp.float32)
            obs_std = jnp.ones((self.obs_dim,), jnp.float32)
        params = self.init_params(k_init)
        score_params = params
        if prune.warmup_steps > 0:
            k_warm = jax.random.fold_in(k_prune, 0x5741)
            score_params = self.warmup_params(params, data, prune, k_warm, obs_mean, obs_std)
            if not prune.warmup_rewind:
                params = score_params
        masks = self.compute_masks(score_params, data, prune, sparsity, k_prune, obs_mean, obs_std)
        params = _mul(params, masks)
        if prune.rescale_init:
            params = pruning.fan_in_rescale(params, masks)
        targets = {k: params[k] for k in ("actor", "critic") if k in params}
        opt_state = {k: self.tx.init(v) for k, v in params.items()}
        return AgentState(params, targets, masks, opt_state, obs_mean, obs_std, jnp.zeros((), jnp.int32))

    # ---- training ---------------------------------------------------------------
    def _masked_step(self, loss_fn, params, opt_state, mask, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        grads = _mul(grads, mask)  # Adam's moments of pruned weights stay exactly 0
        updates, opt_state = self.tx.update(grads, opt_state, params)
        params = _mul(optax.apply_updates(params, updates), mask)
        return params, opt_state, loss

    def train_step(self, state: AgentState, batch: Transitions, key: jax.Array):
        """One BCQ iteration: VAE, critic, actor updates, then Polyak targets.

        Order and losses follow ``BCQ.train`` of sfujim/BCQ: the critic target
        uses the just-updated VAE, the actor loss the just-updated critic.
        """
        c = self.config
        chex.assert_rank(batch.obs, 2)
        b = batch.obs.shape[0]
        batch = batch.replace(
            obs=self.normalize(state.obs_mean, state.obs_std, batch.obs),
            next_obs=self.normalize(state.obs_mean, state.obs_std, batch.next_obs),
        )
        k_eps, k_tgt, k_act = jax.random.split(key, 3)
        params, opt, m = dict(state.params), dict(state.opt_state), state.masks
        metrics = {}

        vae_batch = losses.VAEBatch(batch.obs, batch.action, jax.random.normal(k_eps, (b, self.latent_dim)))
        params["vae"], opt["vae"], metrics["vae_loss"] = self._masked_step(
            self.vae_loss, params["vae"], opt["vae"], m["vae"], vae_batch
        )
        targets = state.target_params
        if not c.vae_only:
            z_t = self.clipped_latent(k_tgt, (b, c.num_target_samples), c.train_latent_clip)
            y = self.critic_target_values(targets, params["vae"], batch, z_t)
            params["critic"], opt["critic"], metrics["critic_loss"] = self._masked_step(
                self.critic_loss, params["critic"], opt["critic"], m["critic"],
                losses.CriticBatch(batch.obs, batch.action, y),
            )
            z_a = self.clipped_latent(k_act, (b,), c.train_latent_clip)
            sampled = jax.lax.stop_gradient(self.decode(params["vae"], batch.obs, z_a))
            params["actor"], opt["actor"], metrics["actor_loss"] = self._masked_step(
                self.actor_loss_fn(params["critic"]["q1"]), params["actor"], opt["actor"], m["actor"],
                losses.ActorBatch(batch.obs, sampled),
            )
            targets = jax.tree_util.tree_map(
                lambda t, p: (1.0 - c.tau) * t + c.tau * p,
                targets, {k: params[k] for k in targets},
            )
        new_state = state.replace(params=params, target_params=targets, opt_state=opt, step=state.step + 1)
        return new_state, metrics

    # ---- acting -------------------------------------------------------------------
    def act(self, state_params, obs_mean, obs_std, obs, key):
        """Actions for a batch of observations ``obs`` (..., obs_dim) (subclass)."""
        raise NotImplementedError
