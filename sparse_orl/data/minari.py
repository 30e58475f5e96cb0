"""Load Minari datasets into flat ``Transitions``."""
from __future__ import annotations

import json
import logging
import os
import pathlib
import socket
import warnings
from typing import Optional, Tuple

import numpy as np

from sparse_orl.data.checks import FLAG, check_array
from sparse_orl.data.d4rl import sha256_files
from sparse_orl.data.reference_scores import d4rl_reference
from sparse_orl.data.transitions import DatasetInfo, Transitions, box_dim, validate_transitions

# Files hashed for DatasetInfo.sha256, in this (sorted) order, when present.
_DATA_FILES = ("main_data.hdf5", "metadata.json")


def _root_text() -> str:
    """Where Minari datasets are looked for, as the user sets it."""
    root = os.environ.get("MINARI_DATASETS_PATH")
    return f"MINARI_DATASETS_PATH={root}" if root else "MINARI_DATASETS_PATH is unset: ~/.minari/datasets"


def _check_local_copy(dataset_id: str, local: pathlib.Path) -> None:
    """A dataset folder on disk holds what minari needs to open it: ``data/metadata.json`` (a JSON
    object) and, for the hdf5 format, ``data/main_data.hdf5``; else one line saying what is missing
    and how to fix it (minari itself says only "No data found in data path")."""
    data = local / "data"
    meta, main = data / "metadata.json", data / "main_data.hdf5"
    fix = (f"delete {local} and get the dataset again (`minari download {dataset_id}` where there is a "
           "network, or copy the whole folder from where it came from)")
    if not meta.is_file():
        if main.is_file():
            raise ValueError(f"Minari dataset {dataset_id!r}: {meta} is missing (its data file main_data.hdf5 is "
                             f"there): the copy is incomplete; copy metadata.json from where the dataset came "
                             f"from, or {fix}")
        raise ValueError(f"Minari dataset {dataset_id!r}: {data} holds neither metadata.json nor main_data.hdf5 "
                         f"(an interrupted download or copy?); {fix}")
    try:
        with open(meta) as f:
            metadata = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"Minari dataset {dataset_id!r}: {meta} is unreadable or not JSON "
                         f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); {fix}") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"Minari dataset {dataset_id!r}: {meta} holds a JSON {type(metadata).__name__}, not the "
                         f"dataset's metadata object; {fix}")
    if metadata.get("data_format", "hdf5") == "hdf5" and not main.is_file():
        raise ValueError(f"Minari dataset {dataset_id!r}: {main} is missing (its metadata.json is there): the copy "
                         f"is incomplete; {fix}")


def _metadata_env_id(local: pathlib.Path) -> Optional[str]:
    """The env id in the metadata's ``env_spec``, or None."""
    try:
        with open(local / "data" / "metadata.json") as f:
            return json.loads(json.load(f).get("env_spec") or "{}").get("id")
    except Exception:  # noqa: BLE001  (only for a message)
        return None


def _has_spaces(meta: pathlib.Path) -> bool:
    try:
        with open(meta) as f:
            m = json.load(f)
        return "observation_space" in m and "action_space" in m
    except Exception:  # noqa: BLE001  (only for a message)
        return True


def _open_dataset(dataset_id: str, download: bool = True):
    """Return ``minari.MinariDataset``: the local copy first, else a download.

    Raises a one-line ``ValueError`` naming the id and the local path searched if neither works,
    or saying what is wrong with a local copy (a missing metadata.json or data file, an unknown env).
    """
    import gymnasium as gym
    import minari  # a second to import: loaded by the first Minari dataset, not by D4RL-file jobs
    from minari.storage.datasets_root_dir import get_dataset_path

    try:
        local = get_dataset_path(dataset_id)
    except OSError as e:  # the root folder cannot be created
        raise ValueError(f"Minari dataset {dataset_id!r}: cannot use the datasets folder ({_root_text()}): "
                         f"{e.strerror or e}") from None
    if (local / "data").is_dir():
        _check_local_copy(dataset_id, local)
        meta = local / "data" / "metadata.json"
        try:
            # download=False: look only in MINARI_DATASETS_PATH (or ~/.minari/datasets).
            return minari.load_dataset(dataset_id, download=False)
        except Exception as e:  # noqa: BLE001  (a metadata field missing or malformed, an unsupported version)
            msg = f"{type(e).__name__}: {e}".splitlines()[0]
            if isinstance(e, (gym.error.Error, ImportError)) or not _has_spaces(meta):
                # minari builds the env named in the metadata when it records no spaces
                raise ValueError(f"Minari dataset {dataset_id!r}: its metadata {meta} records no observation/action "
                                 f"spaces, and the environment it names, {_metadata_env_id(local)!r}, cannot be built "
                                 f"here to get them ({msg})") from None
            raise ValueError(f"Minari dataset {dataset_id!r} could not be opened from its metadata {meta} "
                             f"({msg})") from None
    reason = "download disabled"
    if download:
        reason = _hub_unreachable()
        if reason is None:
            try:  # configures its loggers on import: import it before quieting them
                import huggingface_hub  # noqa: F401
            except ImportError:
                pass
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
    partial = f"; {local} exists but has no data/ folder" if local.is_dir() else ""
    raise ValueError(
        f"Minari dataset {dataset_id!r} not found in the local cache (searched {local}; {_root_text()}{partial}): "
        f"get it with `minari download {dataset_id}` where there is a network (it saves into MINARI_DATASETS_PATH), "
        f"or use a D4RL .hdf5 file path as the dataset; it is not on disk and not downloadable ({reason})"
    )


_PROBE_TIMEOUT_S = 5.0


def _hub_url() -> str:
    """The address a Minari download starts from (the Hugging Face hub, or Google Cloud Storage)."""
    if os.environ.get("MINARI_REMOTE", "").startswith("gcp://"):
        return "https://storage.googleapis.com"
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def _hub_unreachable() -> Optional[str]:
    """Why the dataset hub cannot be reached, or None. Without a working network the Hub client
    retries for ~25 s, printing a line each time; here one DNS look-up (of the hub, or of the HTTPS
    proxy when one is set) and one request with a 5 s timeout tell at once. A host with no address
    to try is left to the client."""
    import urllib.error
    import urllib.request

    url = _hub_url()
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname or ""
    lookup = host
    proxy = urllib.request.getproxies().get(parsed.scheme or "https")
    if proxy and not urllib.request.proxy_bypass(host):
        lookup = urllib.parse.urlparse(proxy if "://" in proxy else "http://" + proxy).hostname or host
    try:
        addresses = socket.getaddrinfo(lookup, parsed.port or 443)
    except OSError as e:
        return f"no network: {lookup} does not resolve ({e.strerror or e})"
    if not addresses:
        return None
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=_PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:  # the hub answered (any status): it is reachable
        return None
    except (urllib.error.URLError, OSError, ValueError) as e:
        why = getattr(e, "reason", None) or e
        why = "timed out" if isinstance(why, socket.timeout) else str(getattr(why, "strerror", None) or why)
        return f"no network: {url} does not answer ({why.splitlines()[0] if why else type(e).__name__})"
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


def check_episode(ep: dict, obs_dim: int, act_dim: int, where: str) -> dict:
    """The arrays of one Minari episode, checked before any cast (``ValueError`` naming ``where``, the
    episode and the field): rewards (T,), observations (T+1, obs_dim), actions (T, act_dim) of finite
    numbers; terminations and truncations (T,) of 0/1."""
    where = f"{where}, episode {ep.get('id')}"
    for key in ("observations", "actions", "rewards", "terminations"):
        if ep.get(key) is None:
            raise ValueError(f"{where}: field {key!r} is missing")
    rew = check_array(where, "rewards", ep["rewards"], (None,), names=("T",), what="one per step")
    T = rew.shape[0]
    out = {"rewards": rew,
           "observations": check_array(where, "observations", ep["observations"], (T + 1, obs_dim),
                                       what=f"T+1 = {T + 1} rows for the {T} steps of 'rewards'"),
           "actions": check_array(where, "actions", ep["actions"], (T, act_dim), what="one row per step"),
           "terminations": check_array(where, "terminations", ep["terminations"], (T,), FLAG,
                                       what="one per step")}
    if ep.get("truncations") is not None:
        check_array(where, "truncations", ep["truncations"], (T,), FLAG, what="one per step")
    return out


def transitions_from_episodes(
    episodes, obs_dim: int, act_dim: int, source: str = "minari", path: Optional[str] = None
) -> Tuple[Transitions, int]:
    """Concatenate Minari episode dicts into float32 ``Transitions`` (and count episodes).

    Each episode has T+1 observations and T actions/rewards/terminations: transition t is
    (obs[t], act[t], rew[t], obs[t+1]) and ``done = terminations[t]``; truncations keep done = 0
    so time-limit ends still bootstrap. Every array is checked first (:func:`check_episode`); a bad
    one raises ``ValueError`` naming ``source`` (the dataset id), ``path`` (its data file) and the field.
    """
    where = f"Minari dataset {source!r}" + (f" ({path})" if path else "")
    obs, act, rew, nxt, done = [], [], [], [], []
    n_ep = 0
    for ep in episodes:
        ep = check_episode(ep, obs_dim, act_dim, where)
        o = ep["observations"]
        obs.append(o[:-1])
        nxt.append(o[1:])
        act.append(ep["actions"])
        rew.append(ep["rewards"])
        done.append(ep["terminations"])
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
            storage.get_episodes(dataset.episode_indices), obs_dim, act_dim, dataset_id,
            path=str(pathlib.Path(storage.data_path) / "main_data.hdf5")
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
