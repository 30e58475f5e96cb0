"""Batched policy evaluation on Gymnasium environments.

Many independently trained policies ("runs") are evaluated at once: for ``num_runs`` runs and
``episodes`` episodes per run, ``num_runs * episodes`` environments are stepped together as one
``gymnasium.vector.SyncVectorEnv``. Each step the policy is called ONCE on the whole batch of
observations, shaped ``(num_runs, episodes, obs_dim)``, and must return actions shaped
``(num_runs, episodes, act_dim)`` (run ``r``'s policy acts on slice ``[r]``, e.g. a ``jax.vmap``
over stacked run parameters).

Episode accounting
------------------
Only the FIRST episode of every environment is counted. Its undiscounted reward is accumulated
until that environment reports ``terminated or truncated``; the environment is then masked out
(Gymnasium 1.x vector envs autoreset, by default on the next step: whatever a finished env does
afterwards is ignored). The loop stops once every environment has finished its first episode.
Actions are clipped to the action space before stepping. If a policy emits a non-finite action
for an environment that is still in its first episode, that environment's return is NaN (and a
zero action is stepped instead, so the simulator stays sane): a diverged run is visible, not
silently scored.

Seeding
-------
Environment ``(r, e)`` (run ``r``, episode ``e``) is reset with the seed

    ``episode_seed(seed, eval_index, r, e) =
        int(np.random.SeedSequence([seed, eval_index, r, e]).generate_state(1, np.uint32)[0])``

where ``r`` is the global run index (``run_offset + local index``). Consequently:

* the same ``(seed, eval_index, r, e)`` always gives the same start state, whatever
  ``num_runs``/``episodes`` are: a run evaluated alone sees exactly the episodes it sees inside a
  batch (and with ``run_offset`` any run can be re-evaluated alone);
* different episodes, runs and evaluation indices get different (hashed, effectively
  independent) seeds. Pass the evaluation number (e.g. ``step // eval_every``) as ``eval_index``
  so that successive evaluations during training use fresh episodes, while two algorithms
  evaluated at the same ``eval_index`` see the same episodes (paired comparison).

The vector env's autoreset after a finished episode is left unseeded; those episodes are never
counted.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import gymnasium as gym
import numpy as np

__all__ = ["make_env", "env_spaces", "episode_seeds", "evaluate_policies"]


def make_env(env_id: str, **kwargs) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)``, with a clear ``ValueError`` for an unknown id.

    An id that gymnasium's registry does not know (missing name, version or namespace,
    deprecated version, malformed id) raises ``ValueError`` naming the id. Errors raised while
    constructing a known environment (e.g. a missing dependency) propagate unchanged.
    """
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ValueError(f"unknown environment id {env_id!r} (flag --env): {exc}") from exc
    return gym.make(env_id, **kwargs)


def _box_dim(space, what: str, env_id: str) -> int:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(
            f"environment {env_id!r}: {what} space must be a 1-D Box, got {space}"
        )
    return int(space.shape[0])


def env_spaces(env_id: str, **kwargs) -> Tuple[int, int, float]:
    """Returns ``(obs_dim, act_dim, max_action)`` of ``env_id``.

    ``max_action`` is the largest absolute action bound (MuJoCo locomotion tasks have symmetric
    bounds, e.g. 1.0). Observation and action spaces must be 1-D Boxes. Extra ``kwargs`` go to
    ``gymnasium.make``.
    """
    env = make_env(env_id, **kwargs)
    try:
        obs_dim = _box_dim(env.observation_space, "observation", env_id)
        act_dim = _box_dim(env.action_space, "action", env_id)
        bounds = np.concatenate([np.abs(env.action_space.low), np.abs(env.action_space.high)])
        max_action = float(np.max(bounds))
    finally:
        env.close()
    return obs_dim, act_dim, max_action


def episode_seeds(
    seed, num_runs: int, episodes: int, eval_index: int = 0, run_offset: int = 0
) -> np.ndarray:
    """Reset seeds, int64 array ``(num_runs, episodes)``; entry ``[i, e]`` is for global run
    ``run_offset + i``, episode ``e`` (see the module docstring).

    ``seed`` may also be a sequence with one seed per run: then run i's episodes
    are seeded from ``(seed[i], eval_index, e)`` alone, so runs that share a
    training seed (e.g. the same seed at several sparsity levels) see the same
    episodes, a paired comparison.
    """
    per_run = np.ndim(seed) > 0
    if per_run and len(seed) != num_runs:
        raise ValueError(f"got {len(seed)} per-run seeds for {num_runs} runs")
    for name, v in (("seed", np.min(seed) if per_run else seed), ("eval_index", eval_index),
                    ("run_offset", run_offset)):
        if int(v) < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    out = np.empty((num_runs, episodes), dtype=np.int64)
    for i in range(num_runs):
        for e in range(episodes):
            if per_run:
                ss = np.random.SeedSequence([int(seed[i]), int(eval_index), e])
            else:
                ss = np.random.SeedSequence([int(seed), int(eval_index), int(run_offset) + i, e])
            out[i, e] = int(ss.generate_state(1, np.uint32)[0])
    return out


def evaluate_policies(
    act_fn: Callable,
    env_id: str,
    num_runs: int,
    episodes: int,
    seed: int,
    eval_index: int = 0,
    max_episode_steps: Optional[int] = None,
    env_kwargs: Optional[dict] = None,
    *,
    run_offset: int = 0,
) -> np.ndarray:
    """Undiscounted first-episode returns, float64 array ``(num_runs, episodes)``.

    Args:
      act_fn: ``obs (num_runs, episodes, obs_dim) float32 numpy -> actions
        (num_runs, episodes, act_dim)`` (numpy or jax array). Called once per vector step.
      env_id: Gymnasium id (unknown ids raise ``ValueError``).
      num_runs, episodes: batch sizes; ``num_runs * episodes`` environments are created.
      seed, eval_index: see the module docstring for how reset seeds are derived.
      max_episode_steps: time limit passed to ``gymnasium.make`` (None: the registered one).
      env_kwargs: extra keyword arguments for ``gymnasium.make``.
      run_offset: global index of the first run (seeds use ``run_offset + i``), so that a
        subset of runs can be evaluated alone with the episodes it gets inside the full batch.

    Raises:
      ValueError: unknown env id, non-Box spaces, bad sizes, or actions of the wrong shape.
    """
    num_runs, episodes = int(num_runs), int(episodes)
    if num_runs < 1 or episodes < 1:
        raise ValueError(f"num_runs and episodes must be >= 1, got {num_runs}, {episodes}")
    seeds = episode_seeds(seed, num_runs, episodes, eval_index, run_offset).reshape(-1)
    n = num_runs * episodes
    make_kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None:
        make_kwargs["max_episode_steps"] = int(max_episode_steps)

    make_env(env_id, **make_kwargs).close()  # validates the id (clear error) before the batch
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make(env_id, **make_kwargs) for _ in range(n)]
    )
    try:
        obs_dim = _box_dim(envs.single_observation_space, "observation", env_id)
        act_dim = _box_dim(envs.single_action_space, "action", env_id)
        low = np.asarray(envs.single_action_space.low, dtype=np.float64)
        high = np.asarray(envs.single_action_space.high, dtype=np.float64)
        act_dtype = envs.single_action_space.dtype
        expected = (num_runs, episodes, act_dim)

        returns = np.zeros(n, dtype=np.float64)
        active = np.ones(n, dtype=bool)
        obs, _ = envs.reset(seed=[int(s) for s in seeds])
        while active.any():
            act = np.asarray(act_fn(np.asarray(obs, dtype=np.float32).reshape(
                num_runs, episodes, obs_dim)))
            if act.shape != expected:
                raise ValueError(
                    f"act_fn returned actions of shape {act.shape}, expected "
                    f"(num_runs, episodes, act_dim) = {expected}"
                )
            act = act.reshape(n, act_dim).astype(np.float64)
            bad = ~np.isfinite(act).all(axis=1)
            if bad.any():
                returns[bad & active] = np.nan
                act[bad] = 0.0
            act = np.clip(act, low, high).astype(act_dtype)
            obs, rew, term, trunc, _ = envs.step(act)
            returns += np.where(active, np.asarray(rew, dtype=np.float64), 0.0)
            active &= ~(np.asarray(term, dtype=bool) | np.asarray(trunc, dtype=bool))
    finally:
        envs.close()
    return returns.reshape(num_runs, episodes)
