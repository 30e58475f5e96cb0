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

from sparse_orl.data.transitions import box_dim
import warnings
import jax
import jax.numpy as jnp
from sparse_orl.trainer.sharding import gather_returns, local_runs
from sparse_orl.algos import algorithm_from_dict
from sparse_orl.data import normalized_score
from sparse_orl.store.final import load_final, run_folders
from sparse_orl.store.summary import read_summary
from sparse_orl.trainer.runs import make_act_fn

# MuJoCo >= 3.16 warns on every model compile that gymnasium's XML attribute 'settotalmass' is
# deprecated (61 times per evaluation of 6 runs x 10 episodes), and its default handler also
# writes each warning to MUJOCO_LOG.TXT in the current directory. This handler drops that one
# message and passes every other MuJoCo warning on as a Python RuntimeWarning (shown once per
# message by Python's default filter), so real problems stay visible. It is installed only if
# no handler was set before (the caller's own choice wins).
_KNOWN_NOISE = ("compiler attribute 'settotalmass' is deprecated",)


def _mujoco_warning(message: str) -> None:
    if not any(m in message for m in _KNOWN_NOISE):

        warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)


def quiet_mujoco() -> None:
    """Install :func:`_mujoco_warning` as MuJoCo's warning handler, unless one is already set."""
    try:
        import mujoco
    except ImportError:
        return
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_mujoco_warning)


quiet_mujoco()

__all__ = ["make_env", "env_spaces", "episode_seeds", "evaluate_policies", "evaluate_runs", "evaluate_workdir"]


def make_env(env_id: str, flag: str = "--env", **kwargs) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)``, with a clear ``ValueError`` for an unknown id.

    An id that gymnasium's registry does not know (missing name, version or namespace,
    deprecated version, malformed id) raises ``ValueError`` naming the id and where it came
    from (``flag``: "--env", or the dataset that recorded it). Errors raised while
    constructing a known environment (e.g. a missing dependency) propagate unchanged.
    """
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ValueError(f"unknown environment id {env_id!r} (from {flag}): {str(exc).splitlines()[0]}") from None
    return gym.make(env_id, **kwargs)


def env_spaces(env_id: str, **kwargs) -> Tuple[int, int, float]:
    """Returns ``(obs_dim, act_dim, max_action)`` of ``env_id``.

    ``max_action`` is the largest absolute action bound (MuJoCo locomotion tasks have symmetric
    bounds, e.g. 1.0). Observation and action spaces must be 1-D Boxes. Extra ``kwargs`` go to
    ``gymnasium.make``.
    """
    env = make_env(env_id, **kwargs)
    try:
        obs_dim = box_dim(env.observation_space, "observation", f"environment {env_id!r}")
        act_dim = box_dim(env.action_space, "action", f"environment {env_id!r}")
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
    source: str = "--env",
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

    make_env(env_id, flag=source, **make_kwargs).close()  # validates the id (clear error) before the batch
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make(env_id, **make_kwargs) for _ in range(n)]
    )
    try:
        obs_dim = box_dim(envs.single_observation_space, "observation", f"environment {env_id!r}")
        act_dim = box_dim(envs.single_action_space, "action", f"environment {env_id!r}")
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


def evaluate_runs(act_fn: Callable, params, obs_mean, obs_std, env_id: str, num_runs: int, r_pad: int,
                  episodes: int, seeds, eval_index: int, key, max_episode_steps: Optional[int] = None) -> np.ndarray:
    """First-episode returns ``(num_runs, episodes)`` of every run of a sharded run stack.

    ``act_fn = training.make_act_fn(algo)``; ``params``, ``obs_mean``, ``obs_std`` are the
    stacked runs' (``r_pad`` rows, padding runs last). Each process evaluates the runs its
    own devices hold (their environments on its own CPU) and the returns are gathered, so
    every process gets every run's returns. Run ``i`` acts with key ``split(key', r_pad)[i]``
    at every step, whoever evaluates it, and is seeded with ``seeds[i]``.
    """


    multi = jax.process_count() > 1
    idx, (params, e_mean, e_std) = local_runs((params, obs_mean, obs_std))
    n_own = int(np.sum(idx < num_runs))  # idx ascends: the real runs come first
    stream = [key]

    def policy(obs):
        stream[0], sub = jax.random.split(stream[0])
        obs = jnp.asarray(obs)
        if len(idx) > n_own:
            obs = jnp.concatenate([obs, jnp.repeat(obs[-1:], len(idx) - n_own, 0)], 0)
        run_keys = jax.random.split(sub, r_pad)
        out = act_fn(params, e_mean, e_std, obs, run_keys[idx] if multi else run_keys)
        return np.asarray(out)[:n_own]

    returns = np.full((n_own, episodes), np.nan)
    if n_own:
        returns = evaluate_policies(policy, env_id, n_own, episodes, seed=[seeds[i] for i in idx[:n_own]],
                                    eval_index=eval_index, max_episode_steps=max_episode_steps)
    if multi:
        returns = gather_returns(returns, idx, r_pad)[:num_runs]
    return returns


def evaluate_workdir(workdir: str, episodes: int, seed: int, max_episode_steps=None):
    """Every run of a finished workdir (one program or several) evaluated again, each run with its own
    final params. Returns ``{"env_id", "score_reference", "episodes", "seed", "runs": [{pruner, seed,
    sparsity, status, nan_step, returns, return, normalized_score}]}`` in the summary's run order."""


    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(f"--max_episode_steps must be >= 1, got {max_episode_steps}")
    entries = run_folders(workdir)
    summary = read_summary(workdir)
    ref = summary.score_reference if summary is not None else None
    # names and status from the summary (a narrow program's own files may predate its label)
    named = summary.runs if summary is not None and len(summary.runs) == len(entries) else None
    out, env_id = [None] * len(entries), None
    for folder in dict.fromkeys(f for f, _, _ in entries):
        agent_dict, runs = load_final(folder)
        agent = algorithm_from_dict(agent_dict)
        env_id = agent_dict["env_id"]
        stack = lambda key: jax.tree_util.tree_map(lambda *xs: jnp.asarray(np.stack(xs)), *[r[key] for r in runs])
        params, mean, std = stack("params"), stack("obs_mean"), stack("obs_std")
        act = make_act_fn(agent)
        key = [jax.random.PRNGKey(seed)]

        def policy(obs):
            key[0], sub = jax.random.split(key[0])
            return np.asarray(act(params, mean, std, jnp.asarray(obs), jax.random.split(sub, len(runs))))

        returns = evaluate_policies(policy, env_id, len(runs), episodes, seed=seed, max_episode_steps=max_episode_steps,
                                    source=f"the workdir's agent config ({folder})")
        for g, (f, i, r) in enumerate(entries):
            if f != folder:
                continue
            rets = returns[i]
            mean_ret = float(np.mean(rets))
            norm = float(normalized_score(mean_ret, ref["min"], ref["max"])) if ref and ref.get("min") is not None else None
            info = named[g] if named is not None else None
            out[g] = {"pruner": info.pruner if info else r.get("pruner"), "seed": r["seed"],
                      "sparsity": info.sparsity if info else r["sparsity"],
                      "status": info.status if info else "ok", "nan_step": info.nan_step if info else None,
                      "returns": [float(x) for x in rets], "return": mean_ret, "normalized_score": norm}
    return {"env_id": env_id, "score_reference": ref, "episodes": episodes, "seed": seed, "runs": out}
