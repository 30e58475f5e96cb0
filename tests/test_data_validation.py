"""Every array of a dataset is checked before training (D4RL .hdf5 files and Minari datasets): shapes,
dtypes, finiteness and 0/1 flags; a bad one is ONE ``ValueError`` line naming the file (or the Minari id
and its file) and the field. And a Minari dataset that is incomplete, names an unknown env or is not on
disk says what is missing and how to get it, at once."""
import json
import os
import shutil
import socket
import time

import h5py
import numpy as np
import pytest

from conftest import make_minari, minari_datasets, write_h5
from sparse_orl.data import load_dataset

N, OBS, ACT = 6, 3, 2


def _arrays(**change):
    rng = np.random.default_rng(0)
    a = dict(observations=rng.normal(size=(N, OBS)), actions=rng.uniform(-1, 1, (N, ACT)), rewards=rng.normal(size=N),
             terminals=np.zeros(N, bool), timeouts=(np.arange(N) % 3) == 2, next_observations=rng.normal(size=(N, OBS)))
    a.update(change)
    return {k: v for k, v in a.items() if v is not None}


def _nan_at(shape, index, value=np.nan):
    x = np.zeros(shape)
    x[index] = value
    return x


# name -> (arrays of the file, the field the message must name, a piece of the message)
D4RL_CASES = {
    "rewards_2d": (dict(rewards=np.zeros((N, 2))), "rewards", "has shape (6, 2), expected (6,)"),
    "rewards_scalar": (dict(rewards=np.float64(1.0)), "rewards", "has shape (), expected (6,)"),
    "rewards_short": (dict(rewards=np.zeros(N - 1)), "rewards", "has shape (5,), expected (6,)"),
    "observations_1d": (dict(observations=np.zeros(N), next_observations=None), "observations", "2-D"),
    "observations_3d": (dict(observations=np.zeros((N, OBS, 1))), "observations", "2-D"),
    "observations_no_features": (dict(observations=np.zeros((N, 0)), next_observations=None), "observations",
                                 "expected (N, obs_dim)"),
    "actions_rows": (dict(actions=np.zeros((N - 1, ACT))), "actions", "has shape (5, 2), expected (6, act_dim)"),
    "actions_1d": (dict(actions=np.zeros(N)), "actions", "2-D"),
    "next_observations_width": (dict(next_observations=np.zeros((N, OBS + 1))), "next_observations",
                                "expected (6, 3)"),
    "terminals_2d": (dict(terminals=np.zeros((N, 2))), "terminals", "expected (6,)"),
    "timeouts_short": (dict(timeouts=np.zeros(N - 2, bool)), "timeouts", "expected (6,)"),
    "rewards_strings": (dict(rewards=np.array([b"r"] * N)), "rewards", "must hold real numbers"),
    "observations_complex": (dict(observations=np.zeros((N, OBS)) + 1j), "observations", "real numbers"),
    "actions_bool": (dict(actions=np.zeros((N, ACT), bool)), "actions", "must hold real numbers"),
    "terminals_strings": (dict(terminals=np.array([b"no"] * N)), "terminals", "bool or real numbers"),
    "rewards_nan": (dict(rewards=_nan_at(N, 4)), "rewards", "1 NaN value(s) of 6 (first at index 4)"),
    "observations_inf": (dict(observations=_nan_at((N, OBS), (2, 1), np.inf)), "observations",
                         "1 inf value(s) of 18 (first at index (2, 1))"),
    "actions_nan_and_inf": (dict(actions=np.array([[np.nan, -np.inf]] * N)), "actions", "6 NaN and 6 inf value(s)"),
    "next_observations_nan": (dict(next_observations=_nan_at((N, OBS), (0, 0))), "next_observations", "NaN"),
    "terminals_nan": (dict(terminals=_nan_at(N, 3)), "terminals", "1 NaN value(s)"),
    "terminals_two": (dict(terminals=np.array([0, 0, 2, 0, 0, 0])), "terminals", "other than 0 and 1 (e.g. 2)"),
    "timeouts_half": (dict(timeouts=np.array([0, 0.5, 0, 0, 0, 0])), "timeouts", "other than 0 and 1 (e.g. 0.5)"),
    "timeouts_negative": (dict(timeouts=np.array([0, -1, 0, 0, 0, 0])), "timeouts", "(e.g. -1)"),
}


@pytest.mark.parametrize("case", sorted(D4RL_CASES))
def test_a_bad_d4rl_array_is_one_line_naming_file_and_field(tmp_path, case):
    change, field, piece = D4RL_CASES[case]
    path = write_h5(tmp_path / f"{case}.hdf5", **_arrays(**change))
    with pytest.raises(ValueError) as e:
        load_dataset(path)
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"D4RL file {path!r}: field {field!r}"), msg
    assert piece in msg, msg


def test_a_group_where_an_array_belongs_is_named(tmp_path):
    path = str(tmp_path / "group.hdf5")
    with h5py.File(path, "w") as f:
        for k, v in _arrays(rewards=None).items():
            f[k] = v
        f.create_group("rewards")
    with pytest.raises(ValueError, match=r"group\.hdf5': field 'rewards' is an HDF5 group, not an array$"):
        load_dataset(path)


@pytest.mark.parametrize("flags", [dict(terminals=np.array([0, 0, 1, 0, 0, 0])),
                                   dict(terminals=np.array([0.0, 0, 1, 0, 0, 0]), timeouts=np.array([0, 1, 0, 0, 0, 1.0])),
                                   dict(terminals=np.array([0, 0, 1, 0, 0, 0], np.uint8), timeouts=None)])
def test_numeric_flags_of_0_and_1_and_integer_data_are_accepted(tmp_path, flags):
    arrays = _arrays(observations=np.arange(N * OBS).reshape(N, OBS), **flags)  # integer observations too
    t, info = load_dataset(write_h5(tmp_path / "hopper_ok.hdf5", **arrays))
    assert t.obs.dtype == np.float32 and info.obs_dim == OBS and info.act_dim == ACT
    assert t.done.sum() == 1  # the one terminal, never a NaN read as "done"


# ---- Minari ------------------------------------------------------------------------------------------
TINY = "test/hopper/checks-v0"


@pytest.fixture(scope="module")
def minari_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("minari_checks")
    with minari_datasets(root):
        make_minari(TINY, episodes=3, max_steps=10)
    return root


@pytest.fixture
def minari_copy(minari_root, tmp_path, monkeypatch):
    """A fresh MINARI_DATASETS_PATH with a copy of the tiny dataset: ``(root, edit)``; ``edit(name)``
    copies it to ``test/hopper/<name>-v0`` and returns (id, its data folder)."""
    root = tmp_path / "datasets"
    shutil.copytree(minari_root, root, ignore=shutil.ignore_patterns("MUJOCO_LOG.TXT"))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))

    def edit(name):
        dataset_id = f"test/hopper/{name}-v0"
        shutil.copytree(root / TINY, root / dataset_id)
        return dataset_id, root / dataset_id / "data"

    return root, edit


def _replace(h5, path, value):
    del h5[path]
    h5[path] = value


MINARI_CASES = {  # name -> (edit of main_data.hdf5, field, piece of the message)
    "rewards_2d": (lambda f: _replace(f, "episode_1/rewards", np.zeros((10, 2))), "episode 1: field 'rewards'",
                   "has shape (10, 2), expected (T,)"),
    "terminations_nan": (lambda f: _replace(f, "episode_0/terminations", _nan_at(10, 4)),
                         "episode 0: field 'terminations'", "1 NaN value(s) of 10 (first at index 4)"),
    "terminations_two": (lambda f: _replace(f, "episode_2/terminations", np.full(10, 2.0)),
                         "episode 2: field 'terminations'", "other than 0 and 1"),
    "truncations_nan": (lambda f: _replace(f, "episode_2/truncations", _nan_at(10, 9)),
                        "episode 2: field 'truncations'", "NaN"),
    "observations_rows": (lambda f: _replace(f, "episode_2/observations", f["episode_2/observations"][()][:-1]),
                          "episode 2: field 'observations'", "has shape (10, 11), expected (11, 11)"),
    "actions_inf": (lambda f: _replace(f, "episode_1/actions", np.full((10, 3), np.inf, np.float32)),
                    "episode 1: field 'actions'", "30 inf value(s) of 30"),
    "rewards_strings": (lambda f: _replace(f, "episode_0/rewards", np.array([b"x"] * 10)),
                        "episode 0: field 'rewards'", "must hold real numbers"),
}


@pytest.mark.parametrize("case", sorted(MINARI_CASES))
def test_a_bad_minari_array_is_one_line_naming_id_file_episode_and_field(minari_copy, case):
    _, edit = minari_copy
    dataset_id, data = edit(case.replace("_", ""))
    change, where, piece = MINARI_CASES[case]
    with h5py.File(data / "main_data.hdf5", "a") as f:
        change(f)
    with pytest.raises(ValueError) as e:
        load_dataset(dataset_id)
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"Minari dataset {dataset_id!r} ({data / 'main_data.hdf5'}), {where}"), msg
    assert piece in msg, msg


def test_minari_folder_without_metadata_says_what_is_missing_and_how_to_fix_it(minari_copy):
    _, edit = minari_copy
    dataset_id, data = edit("nometa")
    os.remove(data / "metadata.json")
    with pytest.raises(ValueError) as e:
        load_dataset(dataset_id)
    msg = str(e.value)
    assert "No data found" not in msg and "\n" not in msg
    assert f"{data / 'metadata.json'} is missing (its data file main_data.hdf5 is there)" in msg, msg
    assert f"minari download {dataset_id}" in msg and "copy metadata.json" in msg, msg


@pytest.mark.parametrize("what", ["main_data", "both", "bad_json"])
def test_other_incomplete_minari_folders_are_named(minari_copy, what):
    _, edit = minari_copy
    dataset_id, data = edit(what.replace("_", ""))
    if what == "main_data":
        os.remove(data / "main_data.hdf5")
        piece = f"{data / 'main_data.hdf5'} is missing (its metadata.json is there)"
    elif what == "both":
        for f in os.listdir(data):
            os.remove(data / f)
        piece = f"{data} holds neither metadata.json nor main_data.hdf5"
    else:
        (data / "metadata.json").write_text('{"total_episodes": 3,')
        piece = f"{data / 'metadata.json'} is unreadable or not JSON"
    with pytest.raises(ValueError) as e:
        load_dataset(dataset_id)
    assert piece in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_minari_metadata_naming_an_unknown_env_without_spaces_names_dataset_and_env(minari_copy):
    _, edit = minari_copy
    dataset_id, data = edit("unknownenv")
    meta = json.loads((data / "metadata.json").read_text())
    del meta["observation_space"], meta["action_space"]
    spec = json.loads(meta["env_spec"])
    spec.update(id="Hoppr-v5", entry_point="no_such_module:NoEnv")
    meta["env_spec"] = json.dumps(spec)
    (data / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError) as e:
        load_dataset(dataset_id)
    msg = str(e.value)
    assert msg.startswith(f"Minari dataset {dataset_id!r}") and "\n" not in msg, msg
    assert "'Hoppr-v5'" in msg and str(data / "metadata.json") in msg, msg


def _no_dns(monkeypatch):
    def no_dns(*a, **k):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)


def test_a_minari_id_not_on_disk_offline_is_one_fast_line_saying_how_to_get_it(minari_copy, monkeypatch):
    root, _ = minari_copy
    _no_dns(monkeypatch)
    t0 = time.monotonic()
    with pytest.raises(ValueError) as e:
        load_dataset("mujoco/hopper/expert-v0")
    assert time.monotonic() - t0 < 5
    msg = str(e.value)
    assert "\n" not in msg
    assert f"searched {root / 'mujoco/hopper/expert-v0'}; MINARI_DATASETS_PATH={root}" in msg, msg
    assert "`minari download mujoco/hopper/expert-v0`" in msg and "D4RL .hdf5" in msg, msg
    assert "not on disk" in msg and "no network" in msg, msg


def test_a_hub_that_resolves_but_does_not_answer_is_known_at_once(minari_copy, monkeypatch):
    """DNS works, the connection does not (a firewall, a proxy that refuses): one probe, not the hub
    client's ~25 s of retries."""
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # the discard port: refused
    import minari

    monkeypatch.setattr(minari, "download_dataset", lambda *a, **k: pytest.fail("no download without a hub"))
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=r"not on disk and not downloadable \(no network: https://127.0.0.1:9 "
                                         r"does not answer"):
        load_dataset("mujoco/hopper/expert-v0")
    assert time.monotonic() - t0 < 10


def test_a_folder_without_data_is_said(minari_copy, monkeypatch):
    root, _ = minari_copy
    (root / "test/hopper/nodata-v0").mkdir(parents=True)
    _no_dns(monkeypatch)
    with pytest.raises(ValueError, match=r"nodata-v0 exists but has no data/ folder"):
        load_dataset("test/hopper/nodata-v0")


def test_the_good_copy_still_loads(minari_copy):
    t, info = load_dataset(TINY)
    assert info.num_episodes == 3 and t.size == 30 and info.env_id == "Hopper-v5"


# ---- through the launchers and the example (subprocesses) ----------------------------------------------
@pytest.mark.slow
def test_launch_train_refuses_bad_data_in_one_line_exit_2_before_any_work(minari_copy, tmp_path):
    from conftest import error_lines, run_launcher, subprocess_env

    root, edit = minari_copy
    dataset_id, data = edit("badenv")
    meta = json.loads((data / "metadata.json").read_text())
    meta["env_spec"] = meta["env_spec"].replace('"Hopper-v5"', '"Hoppr-v5"')
    (data / "metadata.json").write_text(json.dumps(meta))
    bad = write_h5(tmp_path / "hopper_bad.hdf5", **_arrays(rewards=np.zeros((N, 2))))
    env = subprocess_env(MINARI_DATASETS_PATH=root, HF_ENDPOINT="https://127.0.0.1:9")
    for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    cases = [(bad, f"D4RL file {bad!r}: field 'rewards' has shape (6, 2)"),
             (dataset_id, f"unknown environment id 'Hoppr-v5' (from the dataset {dataset_id!r})"),
             ("mujoco/hopper/expert-v0", "`minari download mujoco/hopper/expert-v0`")]
    for i, (dataset, piece) in enumerate(cases):
        wd = tmp_path / f"wd{i}"
        t0 = time.monotonic()
        p = run_launcher("launch.train", [f"--dataset={dataset}", f"--workdir={wd}", "--steps=10",
                                          "--eval_episodes=1", "--algo=bc", "--seeds=0"], tmp_path, env=env)
        lines = error_lines(p.stderr)
        assert p.returncode == 2 and len(lines) == 1, p.stderr[-3000:]
        assert piece in lines[0], lines[0]
        assert "--env" not in lines[0] and "Traceback" not in p.stderr, p.stderr[-3000:]
        assert not wd.exists() or not os.listdir(wd)
        assert time.monotonic() - t0 < 120


@pytest.mark.slow
def test_the_example_without_its_dataset_is_one_line_exit_2(tmp_path):
    import subprocess
    import sys

    from conftest import REPO, subprocess_env

    t0 = time.monotonic()
    p = subprocess.run([sys.executable, os.path.join(REPO, "examples", "prune_your_own.py")], capture_output=True,
                       text=True, cwd=tmp_path, env=subprocess_env(MINARI_DATASETS_PATH=tmp_path), timeout=300)
    assert p.returncode == 2, p.stderr[-3000:]
    assert p.stdout == "" and len(p.stderr.splitlines()) == 1, p.stderr[-3000:]
    line = p.stderr.strip()
    assert line.startswith("error: Minari dataset 'mujoco/halfcheetah/expert-v0' is not on disk"), line
    assert str(tmp_path) in line and "MINARI_DATASETS_PATH" in line, line
    assert "`minari download mujoco/halfcheetah/expert-v0`" in line and "--download" in line, line
    assert time.monotonic() - t0 < 60
