"""Load D4RL-style HDF5 files (flat arrays) into ``Transitions``."""
from __future__ import annotations

import hashlib
import os
import warnings
from typing import Optional, Tuple

import numpy as np

from sparse_orl.data.checks import FLAG, check_array
from sparse_orl.data.reference_scores import d4rl_reference, env_family
from sparse_orl.data.transitions import DatasetInfo, Transitions, validate_transitions
import h5py

_REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
# D4RL (gym v2) locomotion datasets evaluated in their Gymnasium v5 counterparts.
_FAMILY_TO_ENV_ID = {
    "halfcheetah": "HalfCheetah-v5",
    "hopper": "Hopper-v5",
    "walker2d": "Walker2d-v5",
}
# D4RL's qlearning_dataset counts this many steps per episode when `timeouts` is absent.
_D4RL_MAX_EPISODE_STEPS = 1000


def sha256_files(paths) -> str:
    """SHA-256 over the bytes of ``paths`` read in the given order (streamed, 1 MiB chunks)."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def guess_env_id(name: str) -> Optional[str]:
    """Return the Gymnasium v5 id for the MuJoCo family named in ``name`` (e.g. a file name)."""
    family = env_family(os.path.basename(str(name)))
    return None if family is None else _FAMILY_TO_ENV_ID[family]


def _read_arrays(path: str) -> dict:
    """Read the flat D4RL arrays from ``path``; ``ValueError`` naming file/key on failure."""

    try:
        f = h5py.File(path, "r")
    except OSError as e:  # h5py raises OSError for truncated / non-HDF5 files
        raise ValueError(f"D4RL file {path!r} is not a readable HDF5 file ({e})") from None
    with f:
        for key in _REQUIRED_KEYS:
            if key not in f:
                raise ValueError(f"D4RL file {path!r} is missing required key {key!r}")
        out = {}
        for key in _REQUIRED_KEYS + ("timeouts", "next_observations"):
            if key in f:
                if not isinstance(f[key], h5py.Dataset):
                    raise ValueError(f"D4RL file {path!r}: field {key!r} is an HDF5 {type(f[key]).__name__.lower()}, "
                                     "not an array")
                try:
                    out[key] = np.asarray(f[key][()])
                except (OSError, KeyError, TypeError) as e:
                    raise ValueError(f"D4RL file {path!r}: cannot read key {key!r} ({e})") from None
    return out


def check_d4rl_arrays(arrays: dict, where: str) -> None:
    """Every array of a D4RL file, before any cast: observations (N, obs_dim) and actions (N, act_dim)
    of numbers, next_observations (N, obs_dim), rewards (N,), terminals and timeouts (N,) of 0/1, all
    finite (:func:`sparse_orl.data.checks.check_array`); ``ValueError`` naming ``where`` and the field."""
    obs = np.asarray(arrays["observations"])
    if obs.ndim == 2 and obs.shape[0] == 0:
        raise ValueError(f"{where} is empty: field 'observations' has 0 rows (0 transitions)")
    obs = check_array(where, "observations", obs, (None, None), names=("N", "obs_dim"),
                      what="one row of observation features per transition")
    n, obs_dim = obs.shape
    rows = "one per row of 'observations'"
    check_array(where, "actions", arrays["actions"], (n, None), names=("N", "act_dim"),
                what="one row of action components per transition")
    if "next_observations" in arrays:
        check_array(where, "next_observations", arrays["next_observations"], (n, obs_dim),
                    names=("N", "obs_dim"), what="the successor of each row of 'observations'")
    check_array(where, "rewards", arrays["rewards"], (n,), names=("N",), what=rows)
    for key in ("terminals", "timeouts"):
        if key in arrays:
            check_array(where, key, arrays[key], (n,), FLAG, names=("N",), what=rows)


def _episode_ends(terminals: np.ndarray, timeouts: Optional[np.ndarray]) -> np.ndarray:
    """Boolean mask of rows whose successor row belongs to another episode (time-limit ends).

    With ``timeouts`` the mask is ``timeouts``; without it, steps are counted as in D4RL's
    ``qlearning_dataset``: the counter resets after a terminal, and an episode is cut when it
    reaches 1000 steps. The last row of the file never has a successor.
    """
    n = terminals.shape[0]
    if timeouts is not None:
        ends = timeouts.astype(bool).copy()
    else:
        ends = np.zeros(n, bool)
        steps = 0
        for t in range(n):
            steps += 1
            if terminals[t]:
                steps = 0
            elif steps == _D4RL_MAX_EPISODE_STEPS:
                ends[t] = True
                steps = 0
    if n:
        ends[-1] = True
    return ends


def transitions_from_d4rl_arrays(arrays: dict) -> Tuple[Transitions, int]:
    """Build float32 ``Transitions`` (and an episode count) from flat D4RL arrays.

    ``done`` = ``terminals``. Without ``next_observations``, ``next_obs[t] = obs[t+1]`` and rows
    with no successor in the same episode are dropped: time-limit ends (so no transition pairs
    two episodes) and the file's last row. Terminal rows are kept with ``next_obs = obs[t]``: done
    = 1 removes the bootstrap, so that value is never used.
    """
    obs = np.asarray(arrays["observations"], np.float32)
    actions = np.asarray(arrays["actions"], np.float32)
    rewards = np.asarray(arrays["rewards"], np.float32).reshape(-1)
    terminals = np.asarray(arrays["terminals"]).reshape(-1).astype(bool)
    timeouts = arrays.get("timeouts")
    timeouts = None if timeouts is None else np.asarray(timeouts).reshape(-1).astype(bool)
    ends = _episode_ends(terminals, timeouts)
    if "next_observations" in arrays:
        # The file pairs every row with its true successor: keep all rows.
        next_obs = np.asarray(arrays["next_observations"], np.float32)
        keep = np.ones_like(terminals)
    else:
        next_obs = np.empty_like(obs)
        next_obs[:-1] = obs[1:]
        next_obs[terminals] = obs[terminals]
        keep = ~ends | terminals  # a terminal row is complete even at an episode end
    num_episodes = int(np.sum(terminals | ends))
    t = Transitions(
        obs=obs[keep],
        action=actions[keep],
        reward=rewards[keep],
        next_obs=next_obs[keep],
        done=terminals[keep].astype(np.float32),
    )
    return t, num_episodes


def load_d4rl_hdf5(path: str, env_id: Optional[str] = None) -> Tuple[Transitions, DatasetInfo]:
    """Load a D4RL HDF5 file into numpy float32 ``Transitions`` plus its ``DatasetInfo``.

    ``env_id`` defaults to the Gymnasium v5 id guessed from the file name; reference scores are
    the D4RL constants for that env family.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"D4RL file {path!r} does not exist")
    arrays = _read_arrays(path)
    source = path
    check_d4rl_arrays(arrays, f"D4RL file {path!r}")
    t, num_episodes = transitions_from_d4rl_arrays(arrays)
    validate_transitions(t, source)

    env_id = env_id if env_id is not None else guess_env_id(path)
    ref = d4rl_reference(env_id) or d4rl_reference(os.path.basename(path))
    # All D4RL locomotion envs use Box(-1, 1) actions; the file stores no action space.
    max_action = 1.0
    if np.max(np.abs(t.action)) > max_action + 1e-4:
        warnings.warn(f"D4RL file {path!r}: actions exceed the assumed bound {max_action}")
    info = DatasetInfo(
        dataset_id=path,
        env_id=env_id,
        obs_dim=int(t.obs.shape[1]),
        act_dim=int(t.action.shape[1]),
        max_action=max_action,
        ref_min_score=None if ref is None else float(ref[0]),
        ref_max_score=None if ref is None else float(ref[1]),
        score_source="none" if ref is None else "D4RL constants",
        sha256=sha256_files([path]),
        num_episodes=num_episodes,
        num_transitions=t.size,
    )
    return t, info
