"""One run's start: dense init -> pruning at init -> masked train state, for any algorithm.

``init_state(algo, key, data, prune, sparsity, obs_mean, obs_std)`` is what the scan loop's
runs start from. It goes through the algorithm interface only (``init_params``,
``scoring_problems``, ``expand_masks``, ``synflow_paths``, ``rerank_problems``,
``init_state``, ``train_step``) and :func:`sparse_orl.pruning.prune_at_init`.

Keys: ``k_init, k_prune = split(key)``; the scoring batch, the problems' noise and the
scorers' keys are ``split(k_prune, 3)``; the warm-up remedy uses ``fold_in(k_prune, 0x5741)``.
So a seed gives the same initial weights and scoring inputs at every sparsity level, and
the masks of one seed at decreasing sparsity are nested whenever the ranking is fixed.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sparse_orl import pruning
from sparse_orl.algos.base import Algorithm, TrainState
from sparse_orl.config.prune import PruneConfig
from sparse_orl.data.transitions import Transitions, sample_batch


def compute_masks(algo: Algorithm, params, data: Transitions, prune: PruneConfig, sparsity, key,
                  obs_mean, obs_std, subset=None):
    """One mask per network (shaped like ``params``) from each network's own scores at ``sparsity``.

    Every scored network keeps exactly n − round(s·n) kernel weights, for a traced
    ``sparsity`` too; masks shared between networks come from ``algo.expand_masks``.
    With ``prune.prune_networks`` only those keep their masks (scored with all the others,
    so each is the mask the full pruning gives it); the rest get all-ones masks.
    """
    if prune.is_dense:
        return pruning.ones_like_masks(params)
    prune.check_networks(tuple(algo.networks), algo.config.display_name)
    k_batch, k_noise, k_score = jax.random.split(key, 3)
    # data-free methods read no batch: one row keeps their scoring problems well formed
    batch = algo.normalize_batch((obs_mean, obs_std), sample_batch(data, k_batch, prune.score_batch or 1, subset))
    masks = pruning.prune_at_init(
        algo.scoring_problems(params, batch, k_noise), prune.pruner, sparsity, k_score,
        **prune.driver_options(),
        paths=algo.synflow_paths(params),
        rerank=algo.rerank_problems(params, batch, k_noise, prune),
    )
    if prune.prune_networks:
        masks = {k: m if k in prune.prune_networks else pruning.ones_like_masks(m) for k, m in masks.items()}
    return algo.expand_masks(params, masks)


def warmup_params(algo: Algorithm, params, data: Transitions, prune: PruneConfig, key, obs_mean, obs_std,
                  subset=None):
    """Params after ``prune.warmup_steps`` dense train steps (all-ones masks, fresh optimizers).

    The same ``train_step`` as training, in a ``lax.scan``; batches of
    ``prune.warmup_batch`` are sampled from ``data`` inside the scan.
    """
    state = algo.init_state(params, pruning.ones_like_masks(params), obs_mean, obs_std)

    def body(st, k):
        k_b, k_s = jax.random.split(k)
        st, _ = algo.train_step(st, sample_batch(data, k_b, prune.warmup_batch, subset), k_s)
        return st, None

    state, _ = jax.lax.scan(body, state, jax.random.split(key, prune.warmup_steps))
    return state.params


def init_state(algo: Algorithm, key, data: Transitions, prune: PruneConfig, sparsity,
               obs_mean=None, obs_std=None, subset=None) -> TrainState:
    """Initial state: dense init from ``key``, masks from ``prune`` at ``sparsity``.

    With ``prune.warmup_steps > 0`` the masks are scored at the weights after a dense
    warm-up and applied to the initial weights (``warmup_rewind``, default) or to the
    warmed weights; the optimizers start fresh either way. ``rescale_init`` scales each
    unit's kept incoming weights by √(fan_in / kept fan_in) after masking.
    """
    k_init, k_prune = jax.random.split(key)
    if obs_mean is None:
        obs_mean = jnp.zeros((algo.obs_dim,), jnp.float32)
        obs_std = jnp.ones((algo.obs_dim,), jnp.float32)
    params = algo.init_params(k_init)
    score_params = params
    if prune.warmup_steps > 0:
        k_warm = jax.random.fold_in(k_prune, 0x5741)
        score_params = warmup_params(algo, params, data, prune, k_warm, obs_mean, obs_std, subset)
        if not prune.warmup_rewind:
            params = score_params
    masks = compute_masks(algo, score_params, data, prune, sparsity, k_prune, obs_mean, obs_std, subset)
    params = jax.tree_util.tree_map(lambda x, m: x * m, params, masks)
    if prune.rescale_init:
        params = pruning.fan_in_rescale(params, masks)
    return algo.init_state(params, masks, obs_mean, obs_std)
