"""Load Minari datasets into flat ``Transitions``."""
from __future__ import annotations

import json
import logging
import os
import pathlib
import socket
import urllib.parse
import warnings
from typing import Optional, Tuple

import numpy as np

from sparse_orl.data.d4rl import sha256_files
from sparse_orl.data.reference_scores import d4rl_reference
from sparse_orl.data.transitions import DatasetInfo, Transitions, box_dim, validate_transitions

# Files hashed for DatasetInfo.sha256, in this (sorted) order, when present.
_DATA_FILES = ("main_data.hdf5", "metadata.json")


def _open_dataset(dataset_id: str, download: bool = True):
    """Return ``minari.MinariDataset``: the local copy first, else a download.

    Raises a one-line ``ValueError`` naming the id and the local path searched if neither works.
    """
    import minari  # a second to import: loaded by the first Minari dataset, not by D4RL-file jobs
    from minari.storage.datasets_root_dir import get_dataset_path

    try:
        # download=False: look only in MINARI_DATASETS_PATH (or ~/.minari/datasets).
        return minari.load_dataset(dataset_id, download=False)
    except FileNotFoundError:
        pass
    except ValueError as e:  # e.g. a malformed id, unsupported minari version, missing metadata
        raise ValueError(f"Minari dataset {dataset_id!r} could not be opened: {e}") from None
    local = get_dataset_path(dataset_id)
    reason = "download disabled"
    if download:
        reason = _hub_unreachable()
        if reason is None:
            hub_log = logging.getLogger("huggingface_hub")
            level = hub_log.level
            hub_log.setLevel(logging.ERROR)  # its retry lines; the failure is summed up in one line below
            try:
                minari.download_dataset(dataset_id)
                return minari.load_dataset(dataset_id, download=False)
            except Exception as e:  # network, unknown remote id, missing huggingface_hub, ...
                reason = f"{type(e).__name__}: {e}".splitlines()[0]
            finally:
                hub_log.setLevel(level)
    raise ValueError(
        f"Minari dataset {dataset_id!r} not found in the local cache (searched {local}) "
        f"and not downloadable ({reason})"
    )


def _hub_unreachable() -> Optional[str]:
    """Why the dataset hub cannot be reached, or None. Without a network the Hub client retries
    for ~25 s, printing a line each time; a host that does not resolve is known at once."""
    host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    try:
        socket.getaddrinfo(host, 443)
    except OSError as e:
        return f"no network: {host} does not resolve ({e.strerror or e})"
    return None


def _env_id(dataset) -> Optional[str]:
    """Gymnasium id to evaluate in: the recorded eval env spec, else the collection env spec."""
    # minari keeps the eval spec only privately; the metadata holds it as a JSON string.
    raw = dataset.storage.metadata.get("eval_env_spec")
    if isinstance(raw, str):
        try:
            env_id = json.loads(raw).get("id")
            if env_id:
                return str(env_id)
        except (ValueError, AttributeError):
            pass
    spec = dataset.env_spec
    return str(spec.id) if spec is not None and getattr(spec, "id", None) else None


def _max_action(space, dataset_id: str) -> float:
    """``high[0]`` of the action Box; warns when bounds are not uniform or not symmetric."""
    high = np.asarray(space.high, np.float64).reshape(-1)
    low = np.asarray(space.low, np.float64).reshape(-1)
    if not np.all(np.isfinite(high)):
        raise ValueError(f"Minari dataset {dataset_id!r}: action space bound is not finite")
    if not (np.allclose(high, high[0]) and np.allclose(low, -high)):
        # Actors output max_action * tanh(.): only [-m, m]^d bounds are represented exactly.
        warnings.warn(
            f"Minari dataset {dataset_id!r}: action bounds [{low}, {high}] are not a symmetric "
            f"uniform box; using max_action={high[0]}"
        )
    return float(high[0])


def transitions_from_episodes(
    episodes, obs_dim: int, act_dim: int, source: str = "minari"
) -> Tuple[Transitions, int]:
    """Concatenate Minari episode dicts into float32 ``Transitions`` (and count episodes).

    Each episode has T+1 observations and T actions/rewards/terminations: transition t is
    (obs[t], act[t], rew[t], obs[t+1]) and ``done = terminations[t]``; truncations keep done = 0
    so time-limit ends still bootstrap.
    """
    obs, act, rew, nxt, done = [], [], [], [], []
    n_ep = 0
    for ep in episodes:
        o = np.asarray(ep["observations"]).reshape(-1, obs_dim)
        T = int(np.shape(ep["rewards"])[0])
        if o.shape[0] != T + 1:
            raise ValueError(
                f"Minari dataset {source!r}, episode {ep.get('id')}: {o.shape[0]} observations for {T} steps (expected T+1)"
            )
        obs.append(o[:-1])
        nxt.append(o[1:])
        act.append(np.asarray(ep["actions"]).reshape(-1, act_dim))
        rew.append(np.asarray(ep["rewards"]).reshape(-1))
        done.append(np.asarray(ep["terminations"]).reshape(-1))
        n_ep += 1

    def cat(parts, width):
        if not parts:
            return np.zeros((0,) if width is None else (0, width), np.float32)
        # One float64 -> float32 cast over the concatenated array.
        return np.concatenate(parts).astype(np.float32, copy=False)

    t = Transitions(
        obs=cat(obs, obs_dim),
        action=cat(act, act_dim),
        reward=cat(rew, None),
        next_obs=cat(nxt, obs_dim),
        done=cat(done, None),
    )
    return t, n_ep


def _reference_scores(metadata: dict, env_id: Optional[str], dataset_id: str):
    """(ref_min, ref_max, source): dataset metadata first, else D4RL constants, else none."""
    lo, hi = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    if lo is not None and hi is not None:
        return float(lo), float(hi), "dataset metadata"
    ref = d4rl_reference(env_id) or d4rl_reference(dataset_id)
    if ref is not None:
        return float(ref[0]), float(ref[1]), "D4RL constants"
    return None, None, "none"


def load_minari(dataset_id: str, download: bool = True) -> Tuple[Transitions, DatasetInfo]:
    """Load Minari ``dataset_id`` as numpy float32 ``Transitions`` plus its ``DatasetInfo``.

    Looks in the local cache (``MINARI_DATASETS_PATH``) first and downloads only if absent.
    """
    try:
        dataset = _open_dataset(dataset_id, download=download)
        storage = dataset.storage
        obs_dim = box_dim(dataset.observation_space, "observation", f"Minari dataset {dataset_id!r}")
        act_dim = box_dim(dataset.action_space, "action", f"Minari dataset {dataset_id!r}")

        # storage.get_episodes reads each episode's arrays straight from disk (no EpisodeData wrapper).
        t, num_episodes = transitions_from_episodes(
            storage.get_episodes(dataset.episode_indices), obs_dim, act_dim, dataset_id
        )
    except (OSError, KeyError, RuntimeError) as e:  # h5py on a truncated or damaged main_data.hdf5
        from minari.storage.datasets_root_dir import get_dataset_path  # loaded above: no cost

        where = get_dataset_path(dataset_id) / "data" / "main_data.hdf5"
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        raise ValueError(f"Minari dataset {dataset_id!r}: {where} is unreadable, truncated or damaged ({msg}); "
                         "delete the dataset's folder and download it again") from None
    validate_transitions(t, dataset_id)

    env_id = _env_id(dataset)
    ref_min, ref_max, score_source = _reference_scores(storage.metadata, env_id, dataset_id)
    data_dir = pathlib.Path(storage.data_path)
    files = [data_dir / f for f in sorted(_DATA_FILES) if (data_dir / f).is_file()]
    info = DatasetInfo(
        dataset_id=dataset_id,
        env_id=env_id,
        obs_dim=obs_dim,
        act_dim=act_dim,
        max_action=_max_action(dataset.action_space, dataset_id),
        ref_min_score=ref_min,
        ref_max_score=ref_max,
        score_source=score_source,
        sha256=sha256_files(files),
        num_episodes=num_episodes,
        num_transitions=t.size,
    )
    return t, info
