"""A new user's first hour: interrupts, a clean claim of the workdir, help, labels, the Python API, logs."""
import csv
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import TINY_ID
from sparse_orl import config as options_lib
from sparse_orl.job.progress import ChunkSizer, final_table, score_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FLAGS = ["--algo=bc", "--bc_vae_only", "--vae_hidden=16,16", "--batch_size=16", "--seeds=0",
              f"--dataset={TINY_ID}"]


@pytest.fixture
def minari_env(tiny_minari_root, monkeypatch, tmp_path):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_minari_root))
    monkeypatch.chdir(tmp_path)
    return tiny_minari_root


def _env():
    return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)


def _train(args, cwd, **kw):
    return subprocess.Popen([sys.executable, "-m", "launch.train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=cwd, **kw)


def _signal_after_compile(proc, signum, timeout=240):
    """Wait for the line printed after compilation, then send ``signum``; returns (rc, stdout, stderr)."""
    seen, deadline = [], time.time() + timeout
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(("compiled;", "step ")) or time.time() > deadline:
            break
    time.sleep(0.5)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, "".join(seen) + out, err


def test_sigint_and_sigterm_checkpoint_exit_130_143_and_the_same_command_resumes(minari_env, tmp_path):
    wd = tmp_path / "wd"
    cmd = TINY_FLAGS + ["--pruner=erk_random", "--sparsity=0.9", "--steps=40000", "--eval_every=40000",
                        "--checkpoint_every=40000", "--eval_episodes=1", "--eval_max_episode_steps=5",
                        "--noreport", "--notensorboard", "--chunk_s=0.05", f"--workdir={wd}"]
    rc, out, err = _signal_after_compile(_train(cmd, tmp_path), signal.SIGINT)
    assert rc == 130, (out, err)
    m = re.search(r"interrupted at step (\d+); run the same command to resume", out)
    assert m, out
    first = int(m.group(1))
    assert 0 < first < 40000 and os.path.isdir(wd / "checkpoints" / str(first))
    assert "Traceback" not in err and "KeyboardInterrupt" not in err

    rc, out, err = _signal_after_compile(_train(cmd, tmp_path), signal.SIGTERM)
    assert rc == 143, (out, err)
    assert f"resumed from checkpoint at step {first}" in out
    second = int(re.search(r"interrupted at step (\d+)", out).group(1))
    assert second > first

    proc = _train(cmd, tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert f"resumed from checkpoint at step {second}" in out
    summary = json.load(open(wd / "summary.json"))
    assert summary["complete"] and summary["runs"][0]["evals"][-1]["step"] == 40000
    # the final table: one row per (pruner, sparsity)
    assert re.search(r"random\+erk\s+0\.9\s+1\s+-?\d+\.\d", out), out
    # quiet: no MuJoCo deprecation flood, no MUJOCO_LOG.TXT in the user's directory
    assert "settotalmass" not in out + err
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_failed_launch_claims_nothing_and_refusals_list_only_real_differences(minari_env, tmp_path):
    wd = tmp_path / "wd"
    base = TINY_FLAGS[:-1] + ["--pruner=none,snip", "--sparsity=0.5", "--steps=20", "--eval_every=20",
                              "--checkpoint_every=20", "--eval_episodes=0", "--noreport", f"--workdir={wd}"]
    proc = _train(base + ["--dataset=test/hopper/typo-v0"], tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "typo-v0" in err
    assert not (wd / "config.json").exists()
    proc = _train(base + [f"--dataset={TINY_ID}"], tmp_path)  # the corrected command runs
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    proc = _train(base + [f"--dataset={TINY_ID}", "--lr=0.0003"], tmp_path)
    _, err = proc.communicate(timeout=300)
    line = [l for l in err.splitlines() if l.startswith("error:")]
    assert proc.returncode == 2 and len(line) == 1
    assert "agent.lr: 0.001 -> 0.0003" in line[0]
    assert "prunes" not in line[0] and "workdir:" not in line[0]


def test_help_shows_every_option_and_readme_lists_every_flag():
    out = subprocess.run([sys.executable, "-m", "launch.train", "--help"], capture_output=True, text=True,
                         env=_env(), cwd=REPO, timeout=120).stdout
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    names = [o.name for o in options_lib.train_options()]
    for name in names:
        assert re.search(rf"--(\[no\])?{name}:", out), name
        assert f"`--{name}" in readme, f"README's flag table lacks --{name}"
    assert len(names) > 40


def test_dense_runs_are_labelled_dense_everywhere_and_trained_once_per_seed(minari_env, tmp_path):
    from sparse_orl.algos import make_config
    from sparse_orl.config import PruneConfig
    from sparse_orl.job.run import ExperimentConfig, LogConfig, run_experiment

    cfg = ExperimentConfig(dataset=TINY_ID, workdir=str(tmp_path / "wd"),
                           agent=make_config("bc", vae_only=True, vae_hidden=(16, 16)),
                           prunes=(PruneConfig("snip", snip_batch=32), PruneConfig("random")),
                           seeds=(0, 1), sparsities=(0.0, 0.5), steps=20, batch_size=16, eval_every=20,
                           eval_episodes=1, checkpoint_every=20, eval_max_episode_steps=5)
    lines = []
    summary = run_experiment(cfg, log=lines.append, logs=LogConfig(report=False, tensorboard=False))
    labels = [(r["pruner"], r["seed"], r["sparsity"]) for r in summary["runs"]]
    assert labels == [("dense", 0, 0.0), ("snip", 0, 0.5), ("dense", 1, 0.0), ("snip", 1, 0.5),
                      ("random", 0, 0.5), ("random", 1, 0.5)]
    assert all(rep["sparsity"] == 0.0 for r in summary["runs"] if r["pruner"] == "dense" for rep in r["masks"].values())
    runs_json = json.load(open(tmp_path / "wd" / "final" / "runs.json"))["runs"]
    assert [r["pruner"] for r in runs_json] == [p for p, _, _ in labels]
    rows = [json.loads(l) for l in open(tmp_path / "wd" / "metrics.jsonl")]
    assert {r["pruner"] for r in rows} == {"dense", "snip", "random"}
    # the progress line groups scores by (pruner, sparsity)
    assert any(re.search(r"score dense [-\d.]+ \([-\d.]+\.\.[-\d.]+\), snip 0\.5", l) for l in lines), lines


def test_python_api_trains_tables_exports_and_writes_csv_tensorboard_report(minari_env, tmp_path):
    import sparse_orl
    from sparse_orl import deploy

    lines = []
    res = sparse_orl.train(dataset=TINY_ID, algo="bc", bc_vae_only=True, vae_hidden=[16, 16], batch_size=16,
                           pruner=["none", "erk_random"], sparsity=[0.9], seeds=[0], steps=40, eval_every=20,
                           checkpoint_every=40, eval_episodes=1, eval_max_episode_steps=5, workdir=None,
                           log=lines.append)
    assert lines[0].startswith("workdir: ") and res.workdir == lines[0].split(": ", 1)[1]
    table = res.table()
    assert [(r["pruner"], r["sparsity"], r["seed"], r["step"]) for r in table] == [
        ("dense", 0.0, 0, 40), ("random+erk", 0.9, 0, 40)]
    assert all(np.isfinite(r["normalized_score"]) for r in table)
    assert len(res.table(final_only=False)) == 4
    path = str(tmp_path / "policy.sorl")
    assert res.export(1, path) > 0
    policy = deploy.Policy.load(path)
    assert policy.sparse  # the fast sparse kernels by default on numpy
    assert policy.act(np.zeros(policy.obs_dim, np.float32)).shape == (policy.act_dim,)
    dense = deploy.Policy.load(path, sparse=False)
    summ = dense.kernel_summary()  # works on any load
    assert summ and all(layer["kernel"] == "dense" for net in summ.values() for layer in net)
    assert [l["nnz"] for l in summ["vae/d"]] == [l["nnz_before"] for l in policy.kernel_summary()["vae/d"]]
    # metrics.csv holds the JSONL's rows
    rows = [json.loads(l) for l in open(os.path.join(res.workdir, "metrics.jsonl"))]
    with open(os.path.join(res.workdir, "metrics.csv")) as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == len(rows) > 0
    assert [int(r["step"]) for r in csv_rows] == [r["step"] for r in rows]
    assert float(csv_rows[-1]["vae_loss"]) == pytest.approx(rows[-1]["vae_loss"], rel=1e-6)
    assert csv_rows[-1]["normalized_score"] != ""
    # TensorBoard: one folder of events per run
    tb = os.path.join(res.workdir, "tensorboard")
    assert sorted(os.listdir(tb)) == ["dense-seed0", "random+erk-0.9-seed0"]
    assert all(any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(tb, d)))
               for d in os.listdir(tb))
    # the report, written at the end
    assert any(f.endswith(".png") for f in os.listdir(os.path.join(res.workdir, "report")))
    assert any("final score" in l for l in lines)
    # files get the umask's permissions, not mkstemp's 0600
    mode = stat.S_IMODE(os.stat(os.path.join(res.workdir, "summary.json")).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    # masks are stored as booleans
    with np.load(os.path.join(res.workdir, "final", "params.npz")) as z:
        assert all(z[k].dtype == np.bool_ for k in z.files if "/masks/" in k)


def test_python_api_refuses_unknown_and_mistyped_options(tmp_path):
    import sparse_orl

    with pytest.raises(ValueError, match="unknown option stepz"):
        sparse_orl.train(dataset="x", stepz=10, workdir=str(tmp_path), log=None)
    with pytest.raises(ValueError, match="--steps must be an integer"):
        sparse_orl.train(dataset="x", steps="10", workdir=str(tmp_path), log=None)
    with pytest.raises(ValueError, match="--pruner: unknown"):
        sparse_orl.train(dataset="x", pruner="foo", workdir=str(tmp_path), log=None)


def test_wandb_offline_needs_no_network(minari_env, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    import sparse_orl

    monkeypatch.setenv("WANDB_SILENT", "true")
    res = sparse_orl.train(dataset=TINY_ID, algo="bc", bc_vae_only=True, vae_hidden=[8], batch_size=16,
                           pruner="none", seeds=[0], steps=20, eval_every=20, checkpoint_every=20,
                           eval_episodes=0, report=False, wandb_project="sparse-orl-test", wandb_mode="offline",
                           workdir=str(tmp_path / "wd"), log=None)
    assert res.complete
    assert os.path.isdir(tmp_path / "wd" / "wandb")


def test_chunk_sizer_score_groups_and_final_table():
    s = ChunkSizer(target_s=5.0, first=100)
    assert s.next(1000) == 100 and s.next(30) == 30
    s.observe(100, 20.0, compiled=True)  # the compiling chunk does not set the speed
    assert s.next(10_000) == 100
    s.observe(100, 0.1, compiled=False)  # 1000 steps/s -> 5000 steps in 5 s
    assert s.next(100_000) == 5000 and s.next(1234) == 1234
    s.observe(1000, 0.73, compiled=False)  # 1369.9 steps/s -> 6849 -> rounded down to 6800
    assert s.next(100_000) == 6800
    txt = score_text([("dense", 0.0), ("snip", 0.95), ("snip", 0.95)], [70.0, 2.0, None])
    assert txt == " | score dense 70.0, snip 0.95 2.0"
    txt = score_text([("dense", 0.0), ("dense", 0.0)], [70.0, 74.0])
    assert txt == " | score dense 72.0 (70.0..74.0)"
    summary = {"runs": [
        {"pruner": "dense", "sparsity": 0.0, "status": "ok", "evals": [{"normalized_score": 70.0}],
         "train_steps_per_s": 100.0},
        {"pruner": "dense", "sparsity": 0.0, "status": "ok", "evals": [{"normalized_score": 74.0}],
         "train_steps_per_s": 100.0},
        {"pruner": "snip", "sparsity": 0.95, "status": "diverged", "evals": [], "train_steps_per_s": 100.0}]}
    table = final_table(summary, wall_s=75.0)
    assert re.search(r"dense\s+0\s+2\s+72\.0 ± 2\.0\s+100", table), table
    assert re.search(r"snip\s+0\.95\s+1\s+n/a \(1 diverged\)", table), table
    assert table.endswith("wall time 1m15s")
    long = {"pruner": "random+erk+only-critic-value", "sparsity": 0.95, "status": "ok",
            "evals": [{"normalized_score": 9.0}], "train_steps_per_s": 30.0}
    head, _, *rows = final_table({"runs": summary["runs"] + [long]}).splitlines()
    end = head.index("sparsity") + len("sparsity")  # columns stay aligned past a long label
    assert [r[end - 4:end] for r in rows] == ["   0", "0.95", "0.95"], rows


def test_python_sweep_api_trains_resumes_and_names_bad_keywords(minari_env, tmp_path):
    import sparse_orl

    kw = dict(datasets=[TINY_ID], algos=["bc"], bc_vae_only=True, vae_hidden=[8, 8], pruners=["none", "random"],
              sparsities=[0.5], seeds=[0], steps=20, eval_every=20, checkpoint_every=20, eval_episodes=1,
              eval_max_episode_steps=5,
              batch_size=16, log=None)
    wd = tmp_path / "sweep"
    first = sparse_orl.train_sweep(wd, **kw)
    assert len(first.ran) == 1 and not first.done and not first.locked
    rows = first.rows()
    assert {(r["pruner"], r["sparsity"]) for r in rows} == {("dense", 0.0), ("random", 0.5)}
    again = sparse_orl.train_sweep(wd, **kw)  # finished programs are skipped
    assert again.ran == [] and again.done == first.ran
    with pytest.raises(ValueError, match=r"unknown option pruner_s \(the options are launch.sweep's flags"):
        sparse_orl.train_sweep(wd, pruner_s=["snip"], **kw)
    with pytest.raises(ValueError, match=r"a sweep takes --algos \(a comma list\), not --algo"):
        sparse_orl.train_sweep(wd, algo="bc", **kw)
    plan = []
    sparse_orl.train_sweep(tmp_path / "dry", **dict(kw, log=plan.append, dry_run=True))
    assert plan and not os.path.exists(tmp_path / "dry" / "programs")
