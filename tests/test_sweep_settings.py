"""Every per-run setting of a sweep reaches each of its programs (the sweep declares them once, via RunSettings)."""
import dataclasses

from sparse_orl.config import RunSettings
from sparse_orl.sweep import build_sweep, plan


def test_every_run_setting_reaches_every_program(tmp_path):
    given = {"steps": 123, "batch_size": 7, "eval_every": 11, "eval_episodes": 3, "eval_max_episode_steps": 17,
             "checkpoint_every": 13, "max_transitions": 99, "data_subset": "first", "width_multiplier": 1.5,
             "sparse_format": "masked"}
    assert set(given) == {f.name for f in dataclasses.fields(RunSettings)}  # a new setting must be added here
    sweep, _ = build_sweep(dict(given, datasets=("d.hdf5",), workdir=str(tmp_path), algos=("td3bc", "iql"),
                                pruners=("dense", "snip"), sparsities=(0.9,), seeds=(0, 1), max_runs_per_program=2))
    programs = plan(sweep)
    assert len(programs) > 2
    for p in programs:
        assert {k: getattr(p.config, k) for k in given} == given
