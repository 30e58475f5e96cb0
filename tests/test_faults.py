"""Faults: one trainer per workdir, checkpoints that carry their experiment, corrupt-checkpoint fallback."""
import csv
import glob
import json
import os
import re
import subprocess
import sys

import pytest

import equivalence
from conftest import error_lines, run_launcher, start_launcher, subprocess_env
from sparse_orl.algos import BCConfig
from sparse_orl.config import ExperimentConfig, PruneConfig
from sparse_orl.job import run_experiment
from sparse_orl.store.locks import workdir_lock


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


@pytest.mark.slow
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
    assert run_experiment(cfg, log=_quiet).complete  # a released (or dead holder's) lock is taken


@pytest.mark.slow
def test_checkpoints_of_another_experiment_are_refused_without_config_json(tmp_path):
    run_experiment(_cfg(tmp_path), log=_quiet, stop_at=20)
    os.remove(os.path.join(tmp_path, "wd", "config.json"))
    with pytest.raises(ValueError, match=r"checkpoints were trained for a different experiment \(.*seeds: \[0\] -> \[7\]"):
        run_experiment(_cfg(tmp_path, seeds=(7,)), log=_quiet)


@pytest.mark.slow
def test_corrupt_newest_checkpoint_is_moved_aside_and_the_run_finishes(tmp_path):
    cfg = _cfg(tmp_path, steps=60)
    run_experiment(cfg, log=_quiet, stop_at=40)  # checkpoints at 20 and 40
    ckpts = os.path.join(cfg.workdir, "checkpoints")
    for f in glob.glob(os.path.join(ckpts, "40", "**", "*"), recursive=True):
        if os.path.isfile(f) and os.path.getsize(f) > 0:
            with open(f, "r+b") as fh:
                fh.truncate(os.path.getsize(f) // 2)
    summary = run_experiment(cfg, log=_quiet)
    assert summary.complete
    assert glob.glob(ckpts + ".corrupt/40-*")  # kept, not deleted
    again = run_experiment(cfg, log=_quiet)  # and the workdir stays finishable
    assert again.complete


@pytest.mark.slow
def test_unreadable_metrics_lines_are_reported_dropped_and_the_csv_rebuilt(tmp_path):
    cfg = _cfg(tmp_path, steps=60)
    run_experiment(cfg, log=_quiet, stop_at=40)
    path = os.path.join(cfg.workdir, "metrics.jsonl")
    lines = open(path).read().splitlines(keepends=True)
    with open(path, "w") as f:  # a damaged middle line and a torn last line
        f.write(lines[0][: len(lines[0]) // 2] + "\n" + "".join(lines[1:]) + '{"step": 4')
    logs = []
    summary = run_experiment(cfg, log=logs.append)
    assert summary.complete
    assert any(l.startswith("warning: ") and "2 unreadable lines dropped" in l for l in logs), logs
    rows = [json.loads(l) for l in open(path)]  # every line readable again
    with open(os.path.join(cfg.workdir, "metrics.csv")) as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert rows[-1]["step"] == 60


@pytest.mark.slow
def test_truncated_summary_is_rebuilt_from_the_checkpoints(tmp_path):
    cfg = _cfg(tmp_path)
    first = run_experiment(cfg, log=_quiet)
    path = os.path.join(cfg.workdir, "summary.json")
    with open(path, "r+") as f:
        f.truncate(os.path.getsize(path) // 3)
    logs = []
    again = run_experiment(cfg, log=logs.append)
    assert again.complete and any("rebuilding it from the checkpoints" in l for l in logs)
    assert [r.evals for r in again.runs] == [r.evals for r in first.runs]
    assert json.load(open(path))["complete"]


@pytest.mark.parametrize("kind", ["file", "under_file"])
def test_workdir_that_is_a_file_is_refused_in_one_line(tmp_path, kind):
    (tmp_path / "afile").write_text("x")
    wd = tmp_path / "afile" if kind == "file" else tmp_path / "afile" / "sub"
    with pytest.raises(ValueError, match=r"--workdir=.*afile.*(is a file|cannot be created)"):
        run_experiment(_cfg(tmp_path, workdir=str(wd)), log=_quiet)


@pytest.mark.slow
def test_every_run_diverged_exits_3_and_diverged_is_printed_once(tmp_path):
    import h5py

    data = str(tmp_path / "hopper_faults.hdf5")
    equivalence.make_dataset(data)
    with h5py.File(data, "r+") as f:  # finite rewards whose TD targets overflow float32
        f["rewards"][...] = 3e38
    args = [f"--dataset={data}", "--algo=td3bc", "--actor_hidden=8", "--critic_hidden=8", "--pruner=dense",
            "--seeds=0", "--steps=400", "--eval_every=100", "--checkpoint_every=400", "--eval_episodes=0",
            "--batch_size=16", "--noreport", "--notensorboard", "--chunk_s=0.01", f"--workdir={tmp_path}/wd"]
    p = run_launcher("launch.train", args, tmp_path)
    assert p.returncode == 3, p.stderr
    assert p.stdout.count("DIVERGED") == 1, p.stdout
    assert "every run diverged" in p.stderr
    # launch.evaluate flags the diverged run instead of printing its score as a result
    p = run_launcher("launch.evaluate", [f"--workdir={tmp_path}/wd", "--episodes=1", "--max_episode_steps=5"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "DIVERGED in training at step" in p.stdout


@pytest.mark.slow
def test_bad_flags_get_one_line_exit_2_before_any_work(tmp_path):
    data = str(tmp_path / "hopper_faults.hdf5")
    equivalence.make_dataset(data)
    trunc = str(tmp_path / "hopper_trunc.hdf5")
    with open(data, "rb") as f, open(trunc, "wb") as g:
        g.write(f.read()[:3000])
    base = [f"--dataset={data}", "--algo=bc", "--bc_vae_only", "--vae_hidden=8", "--pruner=snip", "--sparsity=0.5",
            "--seeds=0", "--steps=20", "--eval_every=20", "--checkpoint_every=20", "--eval_episodes=0",
            "--batch_size=16", "--noreport"]
    cases = {
        "vae_hidden_empty": (["--vae_hidden="], r"--vae_hidden"),
        "vae_hidden_zero": (["--vae_hidden=0"], r"--vae_hidden"),
        "vae_hidden_negative": (["--vae_hidden=-5"], r"--vae_hidden"),
        "snip_batch": (["--snip_batch=0"], r"--snip_batch must be >= 1"),
        "lr_negative": (["--lr=-0.001"], r"--lr"),
        "lr_nan": (["--lr=nan"], r"--lr"),
        "eval_max": (["--eval_max_episode_steps=0"], r"--eval_max_episode_steps must be >= 1"),
        "absl_enum": (["--allocation=sideways"], r"allocation"),
        "absl_int": (["--steps=lots"], r"steps"),
        "compute_dtype": (["--compute_dtype=float8"], r"--compute_dtype"),
        "log_every": (["--log_every_s=0"], r"--log_every_s"),
        "cpu_devices_zero": (["--cpu_devices=0"], r"--cpu_devices must be a positive integer or 'auto', got '0'"),
        "cpu_devices_word": (["--cpu_devices=many"], r"--cpu_devices must be a positive integer or 'auto'"),
        "truncated_h5": ([f"--dataset={trunc}"], r"hopper_trunc\.hdf5"),
        "workdir_sys": (["--workdir=/sys/sparse_orl_test"], r"--workdir=/sys/sparse_orl_test cannot be created"),
    }
    procs = {}
    for name, (args, _) in cases.items():
        wd = [] if any(a.startswith("--workdir") for a in args) else [f"--workdir={tmp_path}/wd_{name}"]
        procs[name] = start_launcher("launch.train", [*base, *args, *wd], tmp_path)
    for name, p in procs.items():
        out, err = p.communicate(timeout=300)
        lines = error_lines(err)
        assert p.returncode == 2, (name, err[-1500:])
        assert len(lines) == 1 and re.search(cases[name][1], lines[0]), (name, err[-1500:])
        assert "Traceback" not in err, (name, err[-1500:])
        assert not os.path.exists(tmp_path / f"wd_{name}" / "config.json"), name


@pytest.mark.slow
def test_a_write_failure_mid_run_is_one_line_exit_1_and_the_same_command_resumes(tmp_path):
    """A full disk, simulated without root: RLIMIT_FSIZE makes writes past 30 kB fail with EFBIG."""
    data = str(tmp_path / "hopper_faults.hdf5")
    equivalence.make_dataset(data)
    cmd = [sys.executable, "-m", "launch.train", f"--dataset={data}", "--algo=bc", "--bc_vae_only",
           "--vae_hidden=128,128", "--pruner=dense", "--seeds=0", "--steps=40", "--eval_every=20",
           "--checkpoint_every=20", "--eval_episodes=0", "--batch_size=16", "--noreport", "--notensorboard",
           f"--workdir={tmp_path}/wd"]
    env = subprocess_env()

    # the limit is set in a fresh interpreter that then execs the launcher (no fork of this one);
    # with SIGXFSZ ignored, a write past the limit fails with EFBIG instead of killing the process
    small_disk = ("import os, resource, signal, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (30000, 30000)); "
                  "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); os.execv(sys.executable, [sys.executable] + sys.argv[1:])")
    p = subprocess.run([sys.executable, "-c", small_disk] + cmd[1:], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    lines = error_lines(p.stderr)
    assert p.returncode == 1, p.stderr[-2000:]
    assert len(lines) == 1 and "checkpoint of step 20 not written" in lines[0] and "File too large" in lines[0]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.load(open(tmp_path / "wd" / "summary.json"))["complete"]


@pytest.mark.slow
def test_launch_report_creates_nothing_when_it_fails(tmp_path):
    os.makedirs(tmp_path / "empty")
    for args in ([f"--workdir={tmp_path}/missing"], [f"--workdir={tmp_path}/empty"]):
        p = run_launcher("launch.report", args, tmp_path, timeout=120)
        assert p.returncode == 2 and p.stderr.startswith("error: "), p.stderr
    assert not os.path.exists(tmp_path / "missing")
    assert os.listdir(tmp_path / "empty") == []


def _read_only_dir(tmp_path):
    """A folder that cannot be written: mode 0555 as a non-root user, a read-only tmpfs as root."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        return path, lambda: os.chmod(path, 0o755)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("running as root without permission to mount a read-only tmpfs")
    return path, lambda: subprocess.run(["umount", str(path)], capture_output=True)


def test_read_only_workdir_is_refused_in_one_line_before_any_work(tmp_path):
    path, undo = _read_only_dir(tmp_path)
    try:
        for wd in (path, path / "sub"):
            with pytest.raises(ValueError, match=r"--workdir=.*ro.* cannot be created or written \((Read-only|Permission)"):
                run_experiment(_cfg(tmp_path, workdir=str(wd)), log=_quiet)
    finally:
        undo()
