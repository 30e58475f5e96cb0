"""Faults: one trainer per workdir, checkpoints that carry their experiment, corrupt-checkpoint fallback."""
import glob
import os

import pytest

import equivalence
from sparse_orl.algos import BCConfig
from sparse_orl.config import PruneConfig
from sparse_orl.experiment import ExperimentConfig, run_experiment
from sparse_orl.locks import workdir_lock


def _cfg(tmp_path, **kw):
    data = str(tmp_path / "hopper_faults.hdf5")
    if not os.path.exists(data):
        equivalence.make_dataset(data)
    base = dict(dataset=data, workdir=str(tmp_path / "wd"), agent=BCConfig(vae_only=True, vae_hidden=(16, 16)),
                prunes=(PruneConfig("random"),), seeds=(0,), sparsities=(0.5,), steps=40, batch_size=16,
                eval_every=20, eval_episodes=0, checkpoint_every=20)
    base.update(kw)
    return ExperimentConfig(**base)


def _quiet(_):
    pass


def test_second_trainer_on_a_workdir_stops_at_once_naming_the_holder(tmp_path):
    cfg = _cfg(tmp_path)
    os.makedirs(cfg.workdir)
    held = workdir_lock(cfg.workdir, "train")
    assert held.acquire()
    try:
        with pytest.raises(ValueError, match=r"--workdir=.*wd is in use by another trainer \(pid \d+ on "):
            run_experiment(cfg, log=_quiet)
        assert not os.path.exists(os.path.join(cfg.workdir, "config.json"))  # nothing was claimed
    finally:
        held.release()
    assert run_experiment(cfg, log=_quiet)["complete"]  # a released (or dead holder's) lock is taken


def test_checkpoints_of_another_experiment_are_refused_without_config_json(tmp_path):
    run_experiment(_cfg(tmp_path), log=_quiet, stop_at=20)
    os.remove(os.path.join(tmp_path, "wd", "config.json"))
    with pytest.raises(ValueError, match=r"checkpoints were trained for a different experiment \(.*seeds: \[0\] -> \[7\]"):
        run_experiment(_cfg(tmp_path, seeds=(7,)), log=_quiet)


def test_corrupt_newest_checkpoint_is_moved_aside_and_the_run_finishes(tmp_path):
    cfg = _cfg(tmp_path, steps=60)
    run_experiment(cfg, log=_quiet, stop_at=40)  # checkpoints at 20 and 40
    ckpts = os.path.join(cfg.workdir, "checkpoints")
    for f in glob.glob(os.path.join(ckpts, "40", "**", "*"), recursive=True):
        if os.path.isfile(f) and os.path.getsize(f) > 0:
            with open(f, "r+b") as fh:
                fh.truncate(os.path.getsize(f) // 2)
    summary = run_experiment(cfg, log=_quiet)
    assert summary["complete"]
    assert glob.glob(ckpts + ".corrupt/40-*")  # kept, not deleted
    again = run_experiment(cfg, log=_quiet)  # and the workdir stays finishable
    assert again["complete"]
