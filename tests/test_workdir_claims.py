"""Who owns a workdir: a start that fails before training does not claim it; a claimed one refuses another
experiment naming exactly what differs; completion and resumption are judged by what was trained (the
summary's own config, the checkpoints' dataset hash), not by a ``config.json`` that can be edited."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from sparse_orl.algos import make_config
from sparse_orl.config import ExperimentConfig, LogConfig, PruneConfig
from sparse_orl.job import run as run_mod
from sparse_orl.job.run import run_experiment
from sparse_orl.store.workdir import check_workdir, is_claimed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = LogConfig(report=False, tensorboard=False)


def _dataset(folder, name="hopper_claims.hdf5", n=240, seed=0, episode=30):
    """A D4RL-style Hopper-shaped file of random transitions in episodes of ``episode`` steps."""
    path = os.path.join(str(folder), name)
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 11)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["next_observations"] = np.roll(obs, -1, 0)
        f["actions"] = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
        f["rewards"] = rng.normal(size=n).astype(np.float32)
        f["terminals"] = np.zeros(n, bool)
        f["timeouts"] = (np.arange(n) % episode) == episode - 1
    return path


def _cfg(tmp_path, **kw):
    data = os.path.join(str(tmp_path), "hopper_claims.hdf5")
    if not os.path.exists(data):
        _dataset(tmp_path)
    base = dict(dataset=data, workdir=str(tmp_path / "wd"), agent=make_config("bc", vae_only=True, vae_hidden=(8, 8)),
                prunes=(PruneConfig("random"),), seeds=(0,), sparsities=(0.5,), steps=20, batch_size=16,
                eval_every=10, eval_episodes=0, checkpoint_every=10)
    base.update(kw)
    return ExperimentConfig(**base)


def _steps(workdir):
    ckpts = os.path.join(workdir, "checkpoints")
    return sorted(int(n) for n in os.listdir(ckpts) if n.isdigit()) if os.path.isdir(ckpts) else []


# ---- a failed start claims nothing -----------------------------------------------------------
def test_a_start_that_fails_after_config_json_does_not_poison_the_workdir(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)

    def broken(*_a, **_k):  # fails once config.json is written, before any training
        assert os.path.exists(os.path.join(cfg.workdir, "config.json"))
        raise RuntimeError("the device went away")

    monkeypatch.setattr(run_mod, "_run_programs", broken)
    with pytest.raises(RuntimeError, match="the device went away"):
        run_experiment(cfg, log=lambda _m: None, logs=QUIET)
    assert os.path.exists(os.path.join(cfg.workdir, "config.json")) and not is_claimed(cfg.workdir)
    monkeypatch.undo()
    corrected = dataclasses.replace(cfg, agent=make_config("bc", vae_only=True, vae_hidden=(8, 8), lr=3e-4))
    summary = run_experiment(corrected, log=lambda _m: None, logs=QUIET)  # a different command takes it over
    assert summary.complete
    assert json.load(open(os.path.join(cfg.workdir, "config.json")))["agent"]["lr"] == 3e-4
    with pytest.raises(ValueError, match=r"holds a different experiment \(agent\.lr: 0\.0003 -> 0\.001\)"):
        run_experiment(cfg, log=lambda _m: None, logs=QUIET)  # now it is claimed


def _one_episode_iql(tmp_path, **agent):
    data = _dataset(tmp_path, name="hopper_one_episode.hdf5", n=120, episode=120)
    return _cfg(tmp_path, dataset=data, steps=10, eval_every=10, checkpoint_every=10,
                agent=make_config("iql", actor_hidden=(8, 8), critic_hidden=(8, 8), value_hidden=(8, 8), **agent))


def test_iql_reward_scaling_on_one_episode_is_refused_and_the_corrected_command_runs(tmp_path, monkeypatch):
    with pytest.raises(ValueError) as e:
        run_experiment(_one_episode_iql(tmp_path), log=lambda _m: None, logs=QUIET)
    assert str(e.value).startswith("IQL reward scaling needs ") and str(e.value).endswith("--noscale_rewards)")
    wd = str(tmp_path / "wd")
    assert not os.path.exists(wd) or not is_claimed(wd)
    # the corrected command passes every check and claims the workdir (training itself: the launch.train test)
    claimed = []
    monkeypatch.setattr(run_mod, "_run_programs", lambda config, *_a, **_k: claimed.append(config) or "trained")
    fixed = _one_episode_iql(tmp_path, scale_rewards=False)
    assert run_experiment(fixed, log=lambda _m: None, logs=QUIET) == "trained" and claimed == [fixed]
    assert json.load(open(os.path.join(wd, "config.json")))["agent"]["scale_rewards"] is False


@pytest.mark.slow
def test_launch_train_iql_one_episode_error_then_the_corrected_command_on_the_same_workdir(tmp_path):
    data = _dataset(tmp_path, name="hopper_one_episode.hdf5", n=120, episode=120)
    cmd = [sys.executable, "-m", "launch.train", f"--dataset={data}", f"--workdir={tmp_path}/wd", "--algo=iql",
           "--actor_hidden=8,8", "--critic_hidden=8,8", "--value_hidden=8,8", "--pruner=random", "--sparsity=0.5",
           "--seeds=0", "--steps=10", "--eval_every=10", "--checkpoint_every=10", "--eval_episodes=0",
           "--batch_size=16", "--noreport", "--notensorboard"]
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
    assert p.returncode == 2 and len(errors) == 1, p.stderr
    assert errors[0].startswith("error: IQL reward scaling needs ") and errors[0].endswith("--noscale_rewards)")
    p = subprocess.run(cmd + ["--noscale_rewards"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.load(open(tmp_path / "wd" / "summary.json"))["complete"]


def test_a_refused_start_cleaning_up_its_lock_file_never_lets_two_trainers_in(tmp_path, monkeypatch):
    """A refused start removes its lock file. A trainer that opened that file just before (and locks it just
    after the release) must not hold a lock on a removed file while a third one locks a new file."""
    import fcntl
    import types

    from sparse_orl.store import locks
    from sparse_orl.store.workdir import claim_workdir, release_workdir

    wd = str(tmp_path / "wd")
    os.makedirs(wd)
    refused = claim_workdir(wd)
    pending = [True]

    def flock(fd, op):  # the refused start cleans up between the next trainer's open() and its flock()
        if pending and op & fcntl.LOCK_EX:
            pending.clear()
            release_workdir(wd, refused, created=False)
        return fcntl.flock(fd, op)

    monkeypatch.setattr(locks, "fcntl", types.SimpleNamespace(
        flock=flock, LOCK_EX=fcntl.LOCK_EX, LOCK_NB=fcntl.LOCK_NB, LOCK_UN=fcntl.LOCK_UN))
    second = claim_workdir(wd)
    assert not pending
    try:
        with pytest.raises(ValueError, match=r"is in use by another trainer"):
            claim_workdir(wd)
    finally:
        second.release()
    claim_workdir(wd).release()  # free again once the trainer is gone


# ---- a claimed workdir refuses another experiment, naming what differs --------------------------
def _claimed(cfg):
    os.makedirs(os.path.join(cfg.workdir, "checkpoints", "10"))  # what makes a workdir claimed: a checkpoint
    check_workdir(cfg.workdir, cfg)
    assert is_claimed(cfg.workdir)


def test_a_refusal_names_only_the_fields_that_differ_in_full(tmp_path):
    cfg = _cfg(tmp_path, seeds=(0, 1), sparsities=(0.5, 0.9, 0.95, 0.99),
               agent=make_config("bc", vae_only=True, vae_hidden=(8, 8), lr=1e-3),
               prunes=(PruneConfig("random"), PruneConfig("snip")))
    _claimed(cfg)
    check_workdir(cfg.workdir, cfg)  # the same experiment passes
    other = dataclasses.replace(cfg, seeds=(0, 1, 2), sparsities=(0.5, 0.9, 0.95, 0.98),
                                agent=make_config("bc", vae_only=True, vae_hidden=(8, 8), lr=3e-4),
                                prunes=(PruneConfig("random"), PruneConfig("snip", allocation="erk")))
    with pytest.raises(ValueError) as e:
        check_workdir(cfg.workdir, other)
    msg = str(e.value)
    details = msg[msg.index("(") + 1:msg.index("). ")]
    assert details.split("; ") == [
        "agent.lr: 0.001 -> 0.0003",
        "prunes[1].allocation: None -> 'erk'",
        "seeds: [0, 1] -> [0, 1, 2]",
        "sparsities: [0.5, 0.9, 0.95, 0.99] -> [0.5, 0.9, 0.95, 0.98]",
    ], msg
    assert msg.startswith(f"--workdir={cfg.workdir} holds a different experiment (")
    assert msg.endswith("Use a new --workdir, or re-run the original command to resume.") and "\n" not in msg
    # one field alone is named alone; a run setting too
    with pytest.raises(ValueError, match=r"holds a different experiment \(batch_size: 16 -> 32\)\. "):
        check_workdir(cfg.workdir, dataclasses.replace(cfg, batch_size=32))


def test_a_moved_workdir_still_matches_and_an_unclaimed_one_is_taken_over(tmp_path):
    cfg = _cfg(tmp_path)
    _claimed(cfg)
    moved = str(tmp_path / "elsewhere")
    shutil.copytree(cfg.workdir, moved)
    check_workdir(moved, dataclasses.replace(cfg, workdir=moved))  # the path is not part of the experiment
    fresh = _cfg(tmp_path, workdir=str(tmp_path / "fresh"))
    os.makedirs(fresh.workdir)
    check_workdir(fresh.workdir, fresh)  # config.json written, nothing trained
    other = dataclasses.replace(fresh, steps=40)
    check_workdir(fresh.workdir, other)  # not claimed: replaced
    assert json.load(open(os.path.join(fresh.workdir, "config.json")))["steps"] == 40


# ---- what was trained decides, not config.json ------------------------------------------------
def test_a_hand_edited_config_json_does_not_make_a_longer_run_already_complete(tmp_path):
    cfg = _cfg(tmp_path)
    assert run_experiment(cfg, log=lambda _m: None, logs=QUIET).complete
    path = os.path.join(cfg.workdir, "config.json")
    original = open(path).read()
    d = json.loads(original)
    d["steps"] = 40
    json.dump(d, open(path, "w"))
    lines = []
    with pytest.raises(ValueError) as e:  # what was trained decides: 20-step checkpoints, named
        run_experiment(dataclasses.replace(cfg, steps=40), log=lines.append, logs=QUIET)
    assert "its checkpoints were trained for a different experiment (steps: 20 -> 40)" in str(e.value), str(e.value)
    assert not any("already complete" in l for l in lines), lines
    assert _steps(cfg.workdir) == [10, 20]  # its checkpoints untouched
    # with config.json as it was written, the original command finds its finished job
    open(path, "w").write(original)
    lines = []
    assert run_experiment(cfg, log=lines.append, logs=QUIET).complete
    assert lines == [f"{cfg.workdir}: already complete (20 steps); nothing to do"]


def test_a_dataset_replaced_between_a_kill_and_the_resume_is_refused_naming_it(tmp_path):
    cfg = _cfg(tmp_path)
    run_experiment(cfg, log=lambda _m: None, stop_at=10, logs=QUIET)  # killed after the checkpoint at step 10
    assert _steps(cfg.workdir) == [10]
    _dataset(tmp_path, seed=1)  # same path, same shapes, other content
    with pytest.raises(ValueError) as e:
        run_experiment(cfg, log=lambda _m: None, logs=QUIET)
    msg = str(e.value)
    assert msg.startswith(f"--dataset={cfg.dataset}: its content changed since the checkpoints in {cfg.workdir} "
                          "were written (sha256 "), msg
    assert "Restore the original file, or use a new --workdir." in msg and "\n" not in msg
    assert _steps(cfg.workdir) == [10]  # nothing trained on the new file
    _dataset(tmp_path, seed=0)  # the original content back: the resume goes on
    lines = []
    assert run_experiment(cfg, log=lines.append, logs=QUIET).complete
    assert "resumed from checkpoint at step 10" in lines
