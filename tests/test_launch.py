"""End to end: launch.train on a tiny dataset, kill-and-resume, refusals, bad input."""
import json
import re

import numpy as np
import pytest

from conftest import TINY_ID, error_lines, final_runs, metrics_rows, start_launcher, write_random_d4rl
from sparse_orl.algos import make_config
from sparse_orl.config import ExperimentConfig, PruneConfig
from sparse_orl.job import run_experiment
from sparse_orl.job.evaluation import evaluate_workdir

pytestmark = pytest.mark.slow  # every test trains a whole job

TINY_AGENT = dict(actor_hidden=(16, 16), critic_hidden=(16, 16), vae_hidden=(24, 24))


def _config(workdir, algo="bcq", steps=60, **kw):
    base = dict(
        dataset=TINY_ID, workdir=str(workdir),
        agent=make_config(algo, **({"vae_only": True} if algo == "bc" else {}), **TINY_AGENT),
        prunes=(PruneConfig("snip", score_batch=40),), seeds=(0, 1), sparsities=(0.5, 0.9),
        steps=steps, batch_size=16, eval_every=20, eval_episodes=2, checkpoint_every=20,
        eval_max_episode_steps=8,
    )
    base.update(kw)
    return ExperimentConfig(**base)


def _quiet(_):
    pass


def test_train_end_to_end_writes_summary_metrics_and_zeroed_params(minari_env, tmp_path):
    # dense and SNIP runs side by side; dense runs at sparsity 0 only
    cfg = _config(tmp_path / "wd", checkpoint_every=40,
                  prunes=(PruneConfig("dense"), PruneConfig("snip", score_batch=40)))
    summary = run_experiment(cfg, log=_quiet)
    on_disk = json.load(open(tmp_path / "wd" / "summary.json"))
    assert on_disk == json.loads(json.dumps(summary.to_json()))
    assert on_disk["complete"] is True
    assert set(on_disk["provenance"]) >= {"git_commit", "versions", "dataset_id", "dataset_sha256"}
    assert on_disk["score_reference"]["source"] in ("dataset metadata", "D4RL constants")
    assert [(r["pruner"], r["seed"], r["sparsity"]) for r in on_disk["runs"]] == [
        ("dense", 0, 0.0), ("dense", 1, 0.0), ("snip", 0, 0.5), ("snip", 0, 0.9), ("snip", 1, 0.5), ("snip", 1, 0.9)]
    for run in on_disk["runs"]:
        assert set(run["masks"]) == {"actor", "critic", "vae"}
        for net, rep in run["masks"].items():
            assert rep["sparsity"] == pytest.approx(run["sparsity"], abs=1e-3)
            assert sum(v["kept"] for v in rep["layers"].values()) == rep["kept"]
        assert [e["step"] for e in run["evals"]] == [20, 40, 60]
        for e in run["evals"]:
            assert len(e["returns"]) == 2 and np.isfinite(e["normalized_score"])
    steps = [(r["step"], r["pruner"], r["seed"], r["sparsity"]) for r in metrics_rows(tmp_path / "wd")]
    assert len(steps) == len(set(steps)) == 3 * 6
    agent_cfg, runs = final_runs(tmp_path / "wd")
    assert agent_cfg["algo"] == "bcq" and len(runs) == 6
    for r in runs:
        flat_p, flat_m = [], []

        def walk(p, m):
            if isinstance(p, dict):
                for k in p:
                    walk(p[k], m[k])
            else:
                flat_p.append(p)
                flat_m.append(m)

        walk(r["params"], r["masks"])
        assert all(np.all(p[m == 0] == 0.0) for p, m in zip(flat_p, flat_m))
        kept = sum(int(m.sum()) for p, m in zip(flat_p, flat_m) if p.ndim == 2)
        total = sum(m.size for p, m in zip(flat_p, flat_m) if p.ndim == 2)
        assert kept / total == pytest.approx(1 - r["sparsity"], abs=1e-3)
    # the saved params evaluate again (launch.evaluate)
    again = evaluate_workdir(str(tmp_path / "wd"), episodes=2, seed=7, max_episode_steps=8)
    assert [(r["pruner"], r["seed"], r["sparsity"]) for r in again["runs"]] == [
        (r["pruner"], r["seed"], r["sparsity"]) for r in on_disk["runs"]]
    assert all(len(r["returns"]) == 2 and np.isfinite(r["normalized_score"]) for r in again["runs"])
    # re-running a finished experiment does nothing and returns the same summary
    assert run_experiment(cfg, log=_quiet).to_json()["runs"] == on_disk["runs"]


def test_kill_and_resume_gives_identical_results(minari_env, tmp_path):
    kw = dict(algo="bc", steps=80, checkpoint_every=40, sparsities=(0.0, 0.9), seeds=(0,))
    run_experiment(_config(tmp_path / "straight", **kw), log=_quiet)
    cfg = _config(tmp_path / "killed", **kw)
    # stop at 60 with the last checkpoint at 40: rows for step 60 are written twice
    out = run_experiment(cfg, log=_quiet, stop_at=60)
    assert out.complete is False
    run_experiment(cfg, log=_quiet)
    a = json.load(open(tmp_path / "straight" / "summary.json"))
    b = json.load(open(tmp_path / "killed" / "summary.json"))
    assert [r["evals"] for r in a["runs"]] == [r["evals"] for r in b["runs"]]
    assert metrics_rows(tmp_path / "straight") == metrics_rows(tmp_path / "killed")
    _, ra = final_runs(tmp_path / "straight")
    _, rb = final_runs(tmp_path / "killed")
    for x, y in zip(ra, rb):
        for layer in x["params"]["vae"]:
            np.testing.assert_array_equal(x["params"]["vae"][layer]["kernel"], y["params"]["vae"][layer]["kernel"])


def test_different_command_on_existing_workdir_is_refused(minari_env, tmp_path):
    cfg = _config(tmp_path / "wd", algo="bc", steps=20, seeds=(0,), sparsities=(0.5,))
    run_experiment(cfg, log=_quiet, stop_at=20)
    with pytest.raises(ValueError, match=r"--workdir=.*different experiment.*steps"):
        run_experiment(_config(tmp_path / "wd", algo="bc", steps=40, seeds=(0,), sparsities=(0.5,)), log=_quiet)


def test_bad_input_gives_one_clear_line(minari_env, tmp_path):
    write_random_d4rl(tmp_path / "hopper_empty.hdf5", n=0)
    write_random_d4rl(tmp_path / "hopper_nan.hdf5", nan=True)
    base = ["--dataset=" + TINY_ID, "--steps=20", "--eval_every=20", "--checkpoint_every=20",
            "--actor_hidden=8", "--critic_hidden=8", "--vae_hidden=8"]
    cases = {
        "algo": (["--algo=foo"], r"--algo"),
        "pruner": (["--pruner=foo"], r"--pruner"),
        "dataset": (["--dataset=nope/none/none-v0"], r"nope/none/none-v0"),
        "missing_file": ([f"--dataset={tmp_path}/missing.hdf5"], r"missing\.hdf5"),
        "sparsity": (["--sparsity=1.2"], r"--sparsity.*1\.2"),
        "seeds": (["--seeds="], r"--seeds"),
        "env_mismatch": (["--env=HalfCheetah-v5"], r"HalfCheetah-v5"),
        "unknown_env": (["--env=Nope-v9"], r"Nope-v9"),
        "empty": ([f"--dataset={tmp_path}/hopper_empty.hdf5"], r"hopper_empty\.hdf5.*empty|empty.*hopper_empty"),
        "nan": ([f"--dataset={tmp_path}/hopper_nan.hdf5"], r"hopper_nan\.hdf5.*NaN"),
    }
    procs = {name: start_launcher("launch.train", [*base, *args, f"--workdir={tmp_path}/wd_{name}"], tmp_path)
             for name, (args, _) in cases.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, (name, out, err)
        lines = error_lines(err)
        assert len(lines) == 1, (name, err[-2000:])
        assert re.search(cases[name][1], lines[0]), (name, lines[0])
        assert "Traceback" not in err, (name, err[-2000:])
