"""Tests for sparse_orl.data: Minari/D4RL loaders, batches, reference scores."""
from __future__ import annotations

import re

import gymnasium as gym
import jax
import numpy as np
import pytest

from conftest import make_minari, minari_datasets, write_h5
from sparse_orl.data import (
    DatasetInfo,
    Transitions,
    check_env_spaces,
    d4rl_reference,
    load_dataset,
    normalized_score,
    sample_batch,
    to_device,
    validate_transitions,
)
from sparse_orl.data.d4rl import load_d4rl_hdf5

TINY_ID = "test/hopper/tiny-v0"
TINY_REF_ID = "test/hopper/tinyref-v0"


@pytest.fixture(scope="module")
def minari_root(tmp_path_factory):
    """A MINARI_DATASETS_PATH holding two tiny Hopper datasets of 25-step episodes (built once per module)."""
    root = tmp_path_factory.mktemp("minari")
    with minari_datasets(root):
        make_minari(TINY_ID, episodes=8, max_steps=25)
        make_minari(TINY_REF_ID, episodes=2, max_steps=25, ref_min_score=-5.0, ref_max_score=50.0)
    return root


@pytest.fixture
def minari_env(minari_root, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_root))
    return minari_root


def _raw_episodes(dataset_id):
    import minari

    return list(minari.load_dataset(dataset_id).iterate_episodes())


# ---------------------------------------------------------------- Minari


def test_minari_transitions_match_episodes(minari_env):
    t, info = load_dataset(TINY_ID)
    eps = _raw_episodes(TINY_ID)
    lengths = [len(ep.rewards) for ep in eps]
    assert t.size == sum(lengths) == info.num_transitions
    for name in ("obs", "action", "reward", "next_obs", "done"):
        assert getattr(t, name).dtype == np.float32, name

    # Both kinds of episode end occur, including a time-limit step that is not a termination.
    term = np.concatenate([ep.terminations for ep in eps])
    trunc = np.concatenate([ep.truncations for ep in eps])
    assert term.any() and (trunc & ~term).any()
    np.testing.assert_array_equal(t.done, term.astype(np.float32))
    assert np.all(t.done[trunc & ~term] == 0.0)

    start = 0
    for ep, T in zip(eps, lengths):
        o = ep.observations.astype(np.float32)
        np.testing.assert_array_equal(t.obs[start : start + T], o[:-1])
        np.testing.assert_array_equal(t.next_obs[start : start + T], o[1:])
        np.testing.assert_array_equal(t.action[start : start + T], ep.actions.astype(np.float32))
        np.testing.assert_array_equal(t.reward[start : start + T], ep.rewards.astype(np.float32))
        # Within an episode the successor of row t is row t+1's observation.
        np.testing.assert_array_equal(
            t.next_obs[start : start + T - 1], t.obs[start + 1 : start + T]
        )
        start += T

    assert info.dataset_id == TINY_ID
    assert info.env_id == "Hopper-v5"
    assert (info.obs_dim, info.act_dim, info.max_action) == (11, 3, 1.0)
    assert info.num_episodes == 8
    # No reference scores in the metadata: fall back to D4RL constants from the env id.
    assert info.score_source == "D4RL constants"
    assert (info.ref_min_score, info.ref_max_score) == (-20.272305, 3234.3)
    assert len(info.sha256) == 64
    assert load_dataset(TINY_ID)[1].sha256 == info.sha256  # deterministic


def test_minari_reference_scores_from_metadata(minari_env):
    _, info = load_dataset(TINY_REF_ID)
    assert info.score_source == "dataset metadata"
    assert (info.ref_min_score, info.ref_max_score) == (-5.0, 50.0)


def test_minari_unknown_id_raises(minari_env):
    pattern = r"test/nothing/here-v0.*not found.*" + re.escape(str(minari_env))
    with pytest.raises(ValueError, match=pattern):
        load_dataset("test/nothing/here-v0")


# ---------------------------------------------------------------- D4RL HDF5


def _d4rl_arrays(n=6, obs_dim=3, act_dim=2):
    obs = np.arange(n * obs_dim, dtype=np.float64).reshape(n, obs_dim)
    return dict(
        observations=obs,
        actions=np.full((n, act_dim), 0.5),
        rewards=np.arange(n, dtype=np.float64),
        terminals=np.zeros(n, bool),
    )


def test_d4rl_with_next_observations(tmp_path):
    a = _d4rl_arrays()
    a["next_observations"] = a["observations"] + 100
    a["terminals"][2] = True
    a["timeouts"] = np.zeros(6, bool)
    a["timeouts"][4] = True
    t, info = load_dataset(write_h5(tmp_path / "hopper-medium-v2.hdf5", **a))
    assert t.size == 6  # every row kept: the file pairs rows itself
    np.testing.assert_array_equal(t.next_obs, (a["observations"] + 100).astype(np.float32))
    np.testing.assert_array_equal(t.done, [0, 0, 1, 0, 0, 0])
    assert t.obs.dtype == np.float32 and t.done.dtype == np.float32
    assert info.env_id == "Hopper-v5" and info.score_source == "D4RL constants"
    assert (info.ref_min_score, info.ref_max_score) == (-20.272305, 3234.3)
    assert (info.obs_dim, info.act_dim, info.num_transitions) == (3, 2, 6)
    assert len(info.sha256) == 64


def test_d4rl_without_next_observations_drops_timeouts(tmp_path):
    a = _d4rl_arrays(n=7)
    a["terminals"][1] = True  # episode [0, 1] terminates
    a["timeouts"] = np.zeros(7, bool)
    a["timeouts"][4] = True  # episode [2, 4] times out; episode [5, 6] runs off the file end
    t, info = load_d4rl_hdf5(write_h5(tmp_path / "data.h5", **a), env_id="Walker2d-v5")
    obs = a["observations"].astype(np.float32)
    kept = [0, 1, 2, 3, 5]  # drop the timeout row 4 and the file's last row 6
    np.testing.assert_array_equal(t.obs, obs[kept])
    np.testing.assert_array_equal(t.reward, np.array(kept, np.float32))
    np.testing.assert_array_equal(t.done, [0, 1, 0, 0, 0])
    # Successors stay inside the episode; the terminal row's next_obs is unused (done = 1).
    np.testing.assert_array_equal(t.next_obs[[0, 2, 3, 4]], obs[[1, 3, 4, 6]])
    assert info.env_id == "Walker2d-v5" and info.ref_min_score == 1.629008
    assert info.num_episodes == 3


def test_d4rl_without_timeouts_counts_1000_steps(tmp_path):
    n = 2105
    a = _d4rl_arrays(n=n, obs_dim=2, act_dim=1)
    a["terminals"][4] = True  # a 5-step episode, then 1000-step episodes by the counter
    t, _ = load_d4rl_hdf5(write_h5(tmp_path / "halfcheetah-random-v0.hdf5", **a))
    dropped = {4 + 1000, 4 + 2000, n - 1}  # each 1000th step and the file's last row
    kept = np.array([i for i in range(n) if i not in dropped])
    np.testing.assert_array_equal(t.reward, kept.astype(np.float32))
    assert t.size == n - 3


def test_d4rl_missing_file(tmp_path):
    path = str(tmp_path / "nope.hdf5")
    with pytest.raises(FileNotFoundError, match="nope.hdf5"):
        load_dataset(path)


def test_d4rl_corrupt_file(tmp_path):
    path = tmp_path / "broken.hdf5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 50)
    with pytest.raises(ValueError, match="broken.hdf5"):
        load_dataset(str(path))


def test_d4rl_missing_key(tmp_path):
    a = _d4rl_arrays()
    del a["rewards"]
    with pytest.raises(ValueError, match=r"nokey.hdf5.*'rewards'"):
        load_dataset(write_h5(tmp_path / "nokey.hdf5", **a))


def test_nan_raises(tmp_path):
    a = _d4rl_arrays()
    a["observations"][3, 1] = np.nan
    with pytest.raises(ValueError, match=r"nan.hdf5.*NaN"):
        load_dataset(write_h5(tmp_path / "nan.hdf5", **a))


def test_empty_raises(tmp_path):
    a = {k: v[:0] for k, v in _d4rl_arrays().items()}
    with pytest.raises(ValueError, match=r"empty.hdf5.*empty"):
        load_dataset(write_h5(tmp_path / "empty.hdf5", **a))


def test_validate_transitions_ragged():
    t = Transitions(
        obs=np.zeros((3, 2), np.float32),
        action=np.zeros((3, 1), np.float32),
        reward=np.zeros(2, np.float32),
        next_obs=np.zeros((3, 2), np.float32),
        done=np.zeros(3, np.float32),
    )
    with pytest.raises(ValueError, match="reward"):
        validate_transitions(t, "ragged")


# ---------------------------------------------------------------- batches, scores, spaces


def test_sample_batch_jit_rows_of_data():
    n = 50
    obs = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    t = Transitions(
        obs=obs,
        action=obs[:, :2] * 2,
        reward=obs[:, 0],
        next_obs=obs + 1,
        done=(np.arange(n) % 7 == 0).astype(np.float32),
    )
    data = to_device(t)
    batch = jax.jit(sample_batch, static_argnums=2)(data, jax.random.key(0), 16)
    assert batch.obs.shape == (16, 3) and batch.action.shape == (16, 2)
    assert batch.reward.shape == (16,) and batch.done.shape == (16,)
    idx = (np.asarray(batch.obs[:, 0]) / 3).astype(int)  # obs[i, 0] == 3 i identifies the row
    np.testing.assert_array_equal(np.asarray(batch.obs), obs[idx])
    np.testing.assert_array_equal(np.asarray(batch.next_obs), t.next_obs[idx])
    np.testing.assert_array_equal(np.asarray(batch.action), t.action[idx])
    np.testing.assert_array_equal(np.asarray(batch.done), t.done[idx])


def test_normalized_score_and_reference():
    lo, hi = d4rl_reference("HalfCheetah-v5")
    assert (lo, hi) == (-280.178953, 12135.0)
    assert normalized_score(lo, lo, hi) == pytest.approx(0.0)
    assert normalized_score(hi, lo, hi) == pytest.approx(100.0)
    assert isinstance(normalized_score(1000.0, lo, hi), float)
    assert normalized_score(1000.0, -20.272305, 3234.3) == pytest.approx(
        100 * 1020.272305 / 3254.572305
    )
    out = normalized_score(np.array([1.629008, 4592.3, 2296.964504]), 1.629008, 4592.3)
    np.testing.assert_allclose(out, [0.0, 100.0, 50.0])
    for name, family_min in [
        ("halfcheetah", -280.178953),
        ("mujoco/halfcheetah/expert-v0", -280.178953),
        ("sb3/hopper/medium-v0", -20.272305),
        ("hopper-medium-v2.hdf5", -20.272305),
        ("Walker2d-v5", 1.629008),
    ]:
        assert d4rl_reference(name)[0] == family_min, name
    assert d4rl_reference("Ant-v5") is None and d4rl_reference(None) is None


def test_check_env_spaces(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # keep MUJOCO_LOG.TXT out of the repo
    info = DatasetInfo(
        dataset_id="sb3/hopper/medium-v0", env_id="Hopper-v5", obs_dim=11, act_dim=3,
        max_action=1.0, ref_min_score=None, ref_max_score=None, score_source="none",
        sha256="", num_episodes=1, num_transitions=1,
    )
    hopper = gym.make("Hopper-v5")
    check_env_spaces(info, hopper)  # matching dims: no error
    hopper.close()
    cheetah = gym.make("HalfCheetah-v5")
    with pytest.raises(ValueError, match=r"sb3/hopper/medium-v0.*HalfCheetah-v5"):
        check_env_spaces(info, cheetah)
    cheetah.close()


def test_missing_minari_dataset_without_network_is_one_line_at_once(tmp_path, monkeypatch):
    import socket

    from sparse_orl.data.minari import load_minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))

    def no_dns(*a, **k):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(ValueError) as e:
        load_minari("nobody/nothing/none-v0")
    msg = str(e.value)
    assert "\n" not in msg
    assert "'nobody/nothing/none-v0' not found in the local cache" in msg and str(tmp_path) in msg
    assert msg.endswith("not downloadable (no network: huggingface.co does not resolve (Name or service not known))")


def test_missing_minari_dataset_names_the_download_failure(tmp_path, monkeypatch):
    import socket

    import minari

    from sparse_orl.data.minari import load_minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [])

    def refuse(dataset_id, *a, **k):
        raise ConnectionError(f"remote has no {dataset_id}\nsecond line")

    monkeypatch.setattr(minari, "download_dataset", refuse)
    with pytest.raises(ValueError, match=r"not downloadable \(ConnectionError: remote has no nobody/nothing/none-v0\)$"):
        load_minari("nobody/nothing/none-v0")
