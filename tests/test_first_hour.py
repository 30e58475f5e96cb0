"""A new user's first hour: interrupts, a clean claim of the workdir, help, labels, the Python API, logs."""
import csv
import json
import os
import re
import signal
import stat
import time

import numpy as np
import pytest

from conftest import REPO, TINY_ID, error_lines, metrics_rows, program_folders, run_launcher, start_launcher
from sparse_orl.config import job_options
from sparse_orl.job.progress import ChunkSizer, score_text
from sparse_orl.report import final_table
from sparse_orl.store.summary import Eval, RunResult, Summary

TINY_FLAGS = ["--algo=bc", "--bc_vae_only", "--vae_hidden=16,16", "--batch_size=16", "--seeds=0",
              f"--dataset={TINY_ID}"]


def _train(args, cwd):
    return start_launcher("launch.train", args, cwd)


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


@pytest.mark.slow
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
    assert re.search(r"erk_random\s+0\.9\s+1\s+-?\d+\.\d", out), out
    # quiet: no MuJoCo deprecation flood, no MUJOCO_LOG.TXT in the user's directory
    assert "settotalmass" not in out + err
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


@pytest.mark.slow
def test_failed_launch_claims_nothing_and_refusals_list_only_real_differences(minari_env, tmp_path):
    wd = tmp_path / "wd"
    base = TINY_FLAGS[:-1] + ["--pruner=dense,snip", "--sparsity=0.5", "--steps=20", "--eval_every=20",
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
    line = error_lines(err)
    assert proc.returncode == 2 and len(line) == 1
    assert "agent.lr: 0.001 -> 0.0003" in line[0]
    assert "prunes" not in line[0] and "workdir:" not in line[0]


@pytest.mark.slow
def test_help_shows_every_option_and_readme_lists_every_flag():
    out = run_launcher("launch.train", ["--help"], REPO, timeout=120).stdout
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    names = [o.name for o in job_options()]
    for name in names:
        assert re.search(rf"--(\[no\])?{name}:", out), name
        assert f"`--{name}" in readme, f"README's flag table lacks --{name}"
    assert len(names) > 40


@pytest.mark.slow
def test_dense_runs_are_labelled_dense_everywhere_and_trained_once_per_seed(minari_env, tmp_path):
    from sparse_orl.algos import make_config
    from sparse_orl.config import ExperimentConfig, LogConfig, PruneConfig
    from sparse_orl.job import run_experiment
    from sparse_orl.store.final import run_folders

    cfg = ExperimentConfig(dataset=TINY_ID, workdir=str(tmp_path / "wd"),
                           agent=make_config("bc", vae_only=True, vae_hidden=(16, 16)),
                           prunes=(PruneConfig("snip", score_batch=32), PruneConfig("random")),
                           seeds=(0, 1), sparsities=(0.0, 0.5), steps=20, batch_size=16, eval_every=20,
                           eval_episodes=1, checkpoint_every=20, eval_max_episode_steps=5)
    lines = []
    summary = run_experiment(cfg, log=lines.append, logs=LogConfig(report=False, tensorboard=False))
    labels = [(r.pruner, r.seed, r.sparsity) for r in summary.runs]
    # one dense run per seed, whichever method was given level 0 (the order depends on the programs)
    assert sorted(labels) == [("dense", 0, 0.0), ("dense", 1, 0.0), ("random", 0, 0.5), ("random", 1, 0.5),
                              ("snip", 0, 0.5), ("snip", 1, 0.5)]
    assert all(rep["sparsity"] == 0.0 for r in summary.runs if r.pruner == "dense" for rep in r.masks.values())
    assert [r["pruner"] for _, _, r in run_folders(str(tmp_path / "wd"))] == [p for p, _, _ in labels]
    assert {r["pruner"] for r in metrics_rows(tmp_path / "wd")} == {"dense", "snip", "random"}
    # the progress line groups scores by (pruner, sparsity): the two dense seeds as one group
    assert any(re.search(r"score (.*, )?dense [-\d.]+ \([-\d.]+\.\.[-\d.]+\)", l) for l in lines), lines
    assert any(re.search(r"snip 0\.5 [-\d.]+ \([-\d.]+\.\.[-\d.]+\)", l) for l in lines), lines


@pytest.mark.slow
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
        ("dense", 0.0, 0, 40), ("erk_random", 0.9, 0, 40)]
    assert all(np.isfinite(r["normalized_score"]) for r in table)
    every = res.table(final_only=False)
    assert len(every) == 4
    for row in table:  # a run's score: the mean of its last evaluations (both of them here)
        mine = [r["normalized_score"] for r in every if r["run"] == row["run"]]
        assert row["score"] == pytest.approx(np.mean(mine))
    # filters take the name given to train ("none") or the label printed ("dense")
    assert [r["run"] for r in res.table(pruner="none")] == [r["run"] for r in res.table(pruner="dense")] == [0]
    assert [r["pruner"] for r in res.table(sparsity=0.9, seed=0)] == ["erk_random"]
    path = str(tmp_path / "policy.sorl")
    assert res.export(path, pruner="erk_random", seed=0) > 0
    policy = deploy.Policy.load(path)
    assert policy.sparse  # the fast sparse kernels by default on numpy
    assert policy.act(np.zeros(policy.obs_dim, np.float32)).shape == (policy.act_dim,)
    dense = deploy.Policy.load(path, sparse=False)
    summ = dense.kernel_summary()  # works on any load
    assert summ and all(layer["kernel"] == "dense" for net in summ.values() for layer in net)
    assert [l["nnz"] for l in summ["vae/d"]] == [l["nnz_before"] for l in policy.kernel_summary()["vae/d"]]
    runs_tb = []
    for folder in program_folders(res.workdir):
        # metrics.csv holds the JSONL's rows
        rows = [json.loads(l) for l in open(os.path.join(folder, "metrics.jsonl"))]
        with open(os.path.join(folder, "metrics.csv")) as f:
            csv_rows = list(csv.DictReader(f))
        assert len(csv_rows) == len(rows) > 0
        assert [int(r["step"]) for r in csv_rows] == [r["step"] for r in rows]
        assert float(csv_rows[-1]["vae_loss"]) == pytest.approx(rows[-1]["vae_loss"], rel=1e-6)
        assert csv_rows[-1]["normalized_score"] != ""
        # TensorBoard: one folder of events per run
        tb = os.path.join(folder, "tensorboard")
        assert all(any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(tb, d)))
                   for d in os.listdir(tb))
        runs_tb += os.listdir(tb)
        # masks are stored as booleans
        with np.load(os.path.join(folder, "final", "params.npz")) as z:
            assert all(z[k].dtype == np.bool_ for k in z.files if "/masks/" in k)
    assert sorted(runs_tb) == ["dense-seed0", "erk_random-0.9-seed0"]
    # the final table and the report, written at the end
    assert any("score (last 3 evals)" in l for l in lines)
    assert any(f.endswith(".png") for f in os.listdir(os.path.join(res.workdir, "report")))
    # files get the umask's permissions, not mkstemp's 0600
    mode = stat.S_IMODE(os.stat(os.path.join(res.workdir, "summary.json")).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_python_api_refuses_unknown_and_mistyped_options(tmp_path):
    import sparse_orl

    with pytest.raises(ValueError, match="unknown option stepz"):
        sparse_orl.train(dataset="x", stepz=10, workdir=str(tmp_path), log=None)
    with pytest.raises(ValueError, match="--steps must be an integer"):
        sparse_orl.train(dataset="x", steps="10", workdir=str(tmp_path), log=None)
    with pytest.raises(ValueError, match=r"--pruner must be one of .*, got 'foo'"):
        sparse_orl.train(dataset="x", pruner="foo", workdir=str(tmp_path), log=None)


@pytest.mark.slow
def test_wandb_offline_needs_no_network(minari_env, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    import sparse_orl

    monkeypatch.setenv("WANDB_SILENT", "true")
    res = sparse_orl.train(dataset=TINY_ID, algo="bc", bc_vae_only=True, vae_hidden=[8], batch_size=16,
                           pruner="dense", seeds=[0], steps=20, eval_every=20, checkpoint_every=20,
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

    def run(pruner, sparsity, scores, status="ok", sps=100.0, runs=3):
        return RunResult(seed=0, sparsity=sparsity, pruner=pruner, status=status,
                         evals=[Eval(10 * (i + 1), [s], s, s) for i, s in enumerate(scores)],
                         train_steps_per_s=sps, program_runs=runs)

    # a run's score is the mean of its last 3 evaluations: 74 of (60, 70, 80, 72)
    summary = Summary(config={}, runs=[run("dense", 0.0, [70.0]), run("dense", 0.0, [60.0, 70.0, 80.0, 72.0]),
                                       run("snip", 0.95, [], status="diverged")])
    assert [r.score() for r in summary.runs] == [70.0, pytest.approx(74.0), None]
    table = final_table(summary, wall_s=75.0)
    # mean ± sample std over seeds (ddof = 1), and run-steps/s of the program (100 per run x 3 runs)
    assert re.search(r"dense\s+0\s+2\s+72\.0 ± 2\.8\s+300\s+3", table), table
    assert re.search(r"snip\s+0\.95\s+1\s+n/a \(1 diverged\)", table), table
    assert table.endswith("wall time 1m15s")
    long = run("erk_random+only-critic-value", 0.95, [9.0], sps=30.0)
    head, _, *rows = final_table(Summary(config={}, runs=summary.runs + [long])).splitlines()[:-1]
    end = head.index("sparsity") + len("sparsity")  # columns stay aligned past a long label
    assert [r[end - 4:end] for r in rows] == ["   0", "0.95", "0.95"], rows


@pytest.mark.slow
def test_python_sweep_api_trains_resumes_and_names_bad_keywords(minari_env, tmp_path):
    import sparse_orl

    kw = dict(datasets=[TINY_ID], algos=["bc"], bc_vae_only=True, vae_hidden=[8, 8], pruners=["dense", "random"],
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
    with pytest.raises(ValueError, match=r"unknown option pruner_s \(did you mean pruners\?\); the options are "
                                         r"launch.sweep's flags"):
        sparse_orl.train_sweep(wd, pruner_s=["snip"], **kw)
    with pytest.raises(ValueError, match=r"a sweep takes --algos \(a comma list\), not --algo"):
        sparse_orl.train_sweep(wd, algo="bc", **kw)
    plan = []
    sparse_orl.train_sweep(tmp_path / "dry", **dict(kw, log=plan.append, dry_run=True))
    assert plan and not os.path.exists(tmp_path / "dry" / "programs")
