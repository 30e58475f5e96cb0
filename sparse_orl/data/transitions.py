"""Transitions held on device and mini-batches sampled inside jit."""
from __future__ import annotations

import dataclasses
from typing import Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
import gymnasium as gym


@struct.dataclass
class Transitions:
    """Flat transitions (s, a, r, s', done) with a leading axis of size N.

    ``done`` is 1.0 only where the episode *terminated* (bootstrapping is cut);
    truncations (time limits) keep done = 0 so the target still bootstraps.
    """

    obs: jax.Array  # (N, obs_dim) float32
    action: jax.Array  # (N, act_dim) float32
    reward: jax.Array  # (N,) float32
    next_obs: jax.Array  # (N, obs_dim) float32
    done: jax.Array  # (N,) float32

    @property
    def size(self) -> int:
        return int(self.obs.shape[0])


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the loader learned about a dataset besides its transitions."""

    dataset_id: str  # Minari id or the HDF5 path as given
    env_id: Optional[str]  # Gymnasium id to evaluate in (e.g. "HalfCheetah-v5"), if known
    obs_dim: int
    act_dim: int
    max_action: float
    ref_min_score: Optional[float]
    ref_max_score: Optional[float]
    score_source: str  # where ref_min/max came from ("dataset metadata", "D4RL constants", "none")
    sha256: str  # hash of the data file(s)
    num_episodes: int
    num_transitions: int


def validate_transitions(t: Transitions, source: str) -> None:
    """Raise ``ValueError`` naming ``source`` if ``t`` is empty, ragged or not finite."""
    n = int(np.shape(t.obs)[0])
    if n == 0:
        raise ValueError(f"dataset {source!r} is empty (0 transitions)")
    for name in ("obs", "action", "reward", "next_obs", "done"):
        arr = np.asarray(getattr(t, name))
        if arr.shape[0] != n:
            raise ValueError(
                f"dataset {source!r}: field {name!r} has {arr.shape[0]} rows, expected {n}"
            )
        if not np.all(np.isfinite(arr)):
            bad = int(np.sum(~np.isfinite(arr)))
            raise ValueError(f"dataset {source!r}: field {name!r} has {bad} NaN/inf values (as float32)")


def to_device(t: Transitions) -> Transitions:
    """Cast to float32 once and put every field on the default device."""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), t)


def sample_batch(data: Transitions, key: jax.Array, batch_size: int, subset: Optional[jax.Array] = None) -> Transitions:
    """Uniformly sample ``batch_size`` transitions with replacement (jit/vmap safe); with ``subset``
    (row indices into ``data``), uniformly from those rows only."""
    if subset is None:
        idx = jax.random.randint(key, (batch_size,), 0, data.obs.shape[0])
    else:
        idx = jnp.take(subset, jax.random.randint(key, (batch_size,), 0, subset.shape[0]), axis=0)
    batch = jax.tree_util.tree_map(lambda x: jnp.take(x, idx, axis=0), data)
    chex.assert_shape(batch.reward, (batch_size,))
    return batch


SUBSET_TAG = 0x5B5E7  # separates the data-subset stream of a seed from every other use of it


def subset_indices(seed: int, num_transitions: int, size: int, rule: str = "uniform") -> np.ndarray:
    """Rows of a subset of ``size`` of ``num_transitions`` transitions for run seed ``seed``, sorted, int32.

    ``rule="uniform"``: the first ``size`` of a permutation drawn from ``SeedSequence([seed, SUBSET_TAG])``
    (uniform over every episode). ``rule="first"``: rows 0 .. size-1 for every seed, Sparse-Reg's buffer
    (its code keeps the dataset's first N rows, whole episodes in file order; docs/design.md, "Data
    budgets"). The same seed gives the same subset in every program, so runs of one seed are paired
    across pruners and levels."""
    if not 1 <= size <= num_transitions:
        raise ValueError(f"--max_transitions={size} must be in [1, {num_transitions}] (the dataset's transitions)")
    if rule == "first":
        return np.arange(size, dtype=np.int32)
    if rule != "uniform":
        raise ValueError(f"--data_subset must be uniform or first, got {rule!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), SUBSET_TAG]))
    return np.sort(rng.permutation(num_transitions)[:size]).astype(np.int32)


def take_rows(t: Transitions, rows: np.ndarray) -> Transitions:
    """The transitions at ``rows`` (host numpy)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[rows], t)


def obs_stats(t: Transitions, normalize: bool = True):
    """(mean, std + 1e-3) of the observations, float32, computed in float64 once per dataset;
    (0, 1) when ``normalize`` is off, so normalization is the identity."""

    d = np.shape(t.obs)[-1]
    if not normalize:
        return np.zeros(d, np.float32), np.ones(d, np.float32)
    obs = np.asarray(t.obs, np.float64)
    return obs.mean(0).astype(np.float32), (obs.std(0) + 1e-3).astype(np.float32)


def box_dim(space, what: str, where: str) -> int:
    """Flat dimension of a 1-D ``gymnasium.spaces.Box``; ``ValueError`` naming ``where`` otherwise."""

    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"{where}: only 1-D Box {what} spaces are supported, got {space}")
    return int(space.shape[0])
