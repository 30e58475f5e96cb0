"""Offline datasets: loaders (Minari, D4RL HDF5), transitions on device, reference scores."""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Tuple

import numpy as np

from sparse_orl.data.d4rl import load_d4rl_hdf5
from sparse_orl.data.minari import load_minari
from sparse_orl.data.reference_scores import d4rl_reference, normalized_score
from sparse_orl.data.transitions import (
    DatasetInfo,
    Transitions,
    obs_stats,
    sample_batch,
    to_device,
    validate_transitions,
)

__all__ = [
    "Transitions",
    "DatasetInfo",
    "obs_stats",
    "sample_batch",
    "to_device",
    "validate_transitions",
    "load_dataset",
    "load_dataset_info",
    "load_d4rl_hdf5",
    "load_minari",
    "normalized_score",
    "d4rl_reference",
    "check_env_spaces",
]

_HDF5_SUFFIXES = (".hdf5", ".h5")


def load_dataset(name: str, env_id: Optional[str] = None) -> Tuple[Transitions, DatasetInfo]:
    """Load ``name`` as numpy float32 ``Transitions`` plus ``DatasetInfo``.

    A path ending in .hdf5/.h5, or any existing file, is read as a D4RL HDF5 file (``env_id``
    overrides the id guessed from the file name); anything else is a Minari dataset id
    (``env_id``, if given, overrides the id recorded in the dataset).
    """
    name = os.fspath(name)
    if name.lower().endswith(_HDF5_SUFFIXES) or os.path.isfile(name):
        return load_d4rl_hdf5(name, env_id=env_id)
    t, info = load_minari(name)
    if env_id is not None and env_id != info.env_id:
        info = dataclasses.replace(info, env_id=env_id)
    return t, info


# Minari's MuJoCo namespaces name their environment in the id: what a dry run estimates from
# when the dataset itself is not on disk yet.
_MUJOCO_ENVS = {"halfcheetah": "HalfCheetah-v5", "hopper": "Hopper-v5", "walker2d": "Walker2d-v5",
                "ant": "Ant-v5", "humanoid": "Humanoid-v5", "swimmer": "Swimmer-v5", "reacher": "Reacher-v5",
                "pusher": "Pusher-v5", "invertedpendulum": "InvertedPendulum-v5",
                "inverteddoublependulum": "InvertedDoublePendulum-v5", "humanoidstandup": "HumanoidStandup-v5"}


def dataset_on_disk(name: str) -> bool:
    """Whether ``name`` (a D4RL file or a Minari id) can be read without a download."""
    name = os.fspath(name)
    if name.lower().endswith(_HDF5_SUFFIXES) or os.path.isfile(name):
        return os.path.isfile(name)
    try:  # minari (a second to import) only for Minari ids, never for D4RL files
        from minari.storage.datasets_root_dir import get_dataset_path

        return (get_dataset_path(name) / "data" / "main_data.hdf5").is_file()
    except Exception:  # noqa: BLE001  (a malformed id: not on disk)
        return False


def guess_env_id(name: str) -> Optional[str]:
    """The Gymnasium id a Minari MuJoCo dataset id names ("mujoco/hopper/expert-v0" -> "Hopper-v5"), or None."""
    parts = os.fspath(name).split("/")
    if len(parts) == 3:
        return _MUJOCO_ENVS.get(parts[1].lower())
    base = os.path.basename(os.fspath(name)).lower()  # D4RL file names: hopper_medium-v2.hdf5
    return next((v for k, v in sorted(_MUJOCO_ENVS.items(), key=lambda kv: -len(kv[0]))
                 if base.startswith(k)), None)


def load_dataset_info(name: str, env_id: Optional[str] = None) -> DatasetInfo:
    """The ``DatasetInfo`` of ``name`` (shapes, env id, reference scores), as :func:`load_dataset` gives it."""
    return load_dataset(name, env_id)[1]


def _flat_dim(space) -> int:
    """Number of scalars in a Box-like space."""
    return int(np.prod(space.shape)) if space.shape is not None else -1


def check_env_spaces(info: DatasetInfo, env) -> None:
    """Raise ``ValueError`` if the dataset's obs/action dims differ from ``env``'s spaces."""
    env_obs, env_act = _flat_dim(env.observation_space), _flat_dim(env.action_space)
    if (info.obs_dim, info.act_dim) != (env_obs, env_act):
        env_name = getattr(getattr(env, "spec", None), "id", None) or type(env).__name__
        raise ValueError(
            f"dataset {info.dataset_id!r} (obs_dim={info.obs_dim}, act_dim={info.act_dim}) "
            f"does not match env {env_name!r} (obs_dim={env_obs}, act_dim={env_act})"
        )
