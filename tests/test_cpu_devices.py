"""The CPU split into single-threaded devices (``--cpu_devices``): when "auto" splits, what
``split_cpu`` refuses, and that a split job trains the same runs as an unsplit one."""
import json
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from conftest import TINY_ID, final_runs, start_launcher, subprocess_env
from sparse_orl.algos import TD3BCConfig
from sparse_orl.config import ExperimentConfig, PruneConfig
from sparse_orl.store.summary import read_summary
from sparse_orl.trainer import devices as cpu_devices


@pytest.mark.parametrize("runs,cores,want", [(1, 2, 1), (2, 2, 2), (3, 2, 1), (5, 2, 1), (6, 2, 2), (11, 2, 2),
                                             (3, 8, 3), (40, 16, 14), (9, 1, 1)])
def test_auto_splits_over_as_many_cores_as_the_runs_fill(monkeypatch, runs, cores, want):
    monkeypatch.setattr(cpu_devices, "accelerator_installed", lambda: False)
    assert cpu_devices.auto_cpu_devices(runs, cores) == want


def test_auto_leaves_the_cpu_alone_when_an_accelerator_plugin_is_installed(monkeypatch):
    monkeypatch.setattr(cpu_devices, "accelerator_installed", lambda: True)
    assert cpu_devices.auto_cpu_devices(40, 16) == 1


def test_jax_platforms_cpu_means_no_accelerator(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert cpu_devices.accelerator_installed() is False


def test_split_cpu_refuses_bad_counts_and_a_started_backend():
    import jax

    jax.devices()  # the backend is started (one CPU device in this process)
    with pytest.raises(ValueError, match=r"--cpu_devices must be >= 1 or 'auto', got 0"):
        cpu_devices.split_cpu(0)
    cpu_devices.split_cpu(1)  # nothing to do
    with pytest.raises(RuntimeError, match=r"--cpu_devices=2: JAX has already started with 1 CPU device\(s\)"):
        cpu_devices.split_cpu(2)


@pytest.mark.slow
def test_split_cpu_in_a_fresh_process_gives_single_threaded_devices_and_keeps_xla_flags():
    script = textwrap.dedent("""
        import json, os
        from sparse_orl.trainer.devices import split_cpu
        split_cpu(3)
        import jax
        print(json.dumps({"devices": jax.device_count(), "flags": os.environ["XLA_FLAGS"]}))
    """)
    env = subprocess_env(XLA_FLAGS="--xla_backend_optimization_level=0")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["devices"] == 3
    assert info["flags"].split() == ["--xla_backend_optimization_level=0", "--xla_cpu_multi_thread_eigen=false",
                                     "intra_op_parallelism_threads=1"]


def test_runs_per_program_counts_the_largest_program():
    cfg = ExperimentConfig(dataset="d", workdir="w", agent=TD3BCConfig(),
                           prunes=(PruneConfig("dense"), PruneConfig("erk_random"), PruneConfig("narrow")),
                           seeds=(0, 1), sparsities=(0.9, 0.95))
    assert cfg.runs_per_program == 6  # 2 dense + 2 x 2 erk_random; each narrow program has 2
    only_narrow = ExperimentConfig(dataset="d", workdir="w", agent=TD3BCConfig(), prunes=(PruneConfig("narrow"),),
                                   seeds=(0, 1, 2), sparsities=(0.9,))
    assert only_narrow.runs_per_program == 3


def _train(tiny_minari_root, wd, devices):
    args = ["--algo=td3bc", f"--dataset={TINY_ID}", "--actor_hidden=16,16", "--critic_hidden=16,16",
            "--pruner=dense,erk_random", "--sparsity=0.9", "--seeds=0", "--steps=60", "--eval_every=60",
            "--checkpoint_every=60", "--eval_episodes=2", "--batch_size=32", "--noreport", "--notensorboard",
            f"--cpu_devices={devices}", f"--workdir={wd}"]
    return start_launcher("launch.train", args, tiny_minari_root, subprocess_env(MINARI_DATASETS_PATH=tiny_minari_root))


@pytest.mark.slow
def test_a_job_split_over_two_cpu_devices_trains_the_same_runs(tiny_minari_root, tmp_path):
    procs = {d: _train(tiny_minari_root, tmp_path / f"wd{d}", d) for d in (1, 2)}
    outs = {}
    for d, p in procs.items():
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        outs[d] = out
    assert "on 2 CPU devices" in outs[2] and "CPU devices" not in outs[1]
    (_, one), (_, two) = (final_runs(tmp_path / f"wd{d}") for d in (1, 2))
    assert [(r["pruner"], r["seed"], r["sparsity"]) for r in one] == \
        [(r["pruner"], r["seed"], r["sparsity"]) for r in two] == [("dense", 0, 0.0), ("erk_random", 0, 0.9)]
    for a, b in zip(one, two):
        for part in ("params", "masks", "obs_mean", "obs_std"):
            flat_a = jax.tree_util.tree_flatten_with_path(a[part])[0]
            flat_b = jax.tree_util.tree_leaves(b[part])
            assert len(flat_a) == len(flat_b)
            for (path, x), y in zip(flat_a, flat_b):
                np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5, err_msg=f"{part}{jax.tree_util.keystr(path)}")
    summaries = [read_summary(str(tmp_path / f"wd{d}")) for d in (1, 2)]
    assert [[len(r.evals) for r in s.runs] for s in summaries] == [[1, 1], [1, 1]]
