"""Stopping a job: SIGINT / SIGTERM from Python (``Interrupted.step``), a second signal that stops at once,
and the train lock a killed trainer leaves behind (none: the kernel drops an flock with its holder).

The signals are sent at fixed points of the host loop (from its hooks, or once a line was printed),
never after a sleep, so each test sees one ordering of events.
"""
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import h5py
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _dataset(folder, n=240, seed=0):
    """A D4RL-style Hopper-shaped file of random transitions (episodes of 30 steps)."""
    path = os.path.join(str(folder), "hopper_signals.hdf5")
    if not os.path.exists(path):
        rng = np.random.default_rng(seed)
        obs = rng.normal(size=(n, 11)).astype(np.float32)
        with h5py.File(path, "w") as f:
            f["observations"] = obs
            f["next_observations"] = np.roll(obs, -1, 0)
            f["actions"] = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
            f["rewards"] = rng.normal(size=n).astype(np.float32)
            f["terminals"] = np.zeros(n, bool)
            f["timeouts"] = (np.arange(n) % 30) == 29
    return path


def _env():
    return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)


def _flags(data, workdir, checkpoint_every=100_000):
    return [f"--dataset={data}", f"--workdir={workdir}", "--algo=bc", "--bc_vae_only", "--vae_hidden=8,8",
            "--pruner=random", "--sparsity=0.5", "--seeds=0", "--batch_size=16", "--steps=1000000",
            "--eval_every=1000000", f"--checkpoint_every={checkpoint_every}", "--eval_episodes=0", "--noreport",
            "--notensorboard", "--chunk_s=0.02", "--cpu_devices=1"]


# launch.train, with signals sent to itself from the host loop's hooks: the first once the first chunk
# compiled ("first"), the second right after the checkpoint the first one caused ("after_checkpoint") or
# right after the first ("at_once", before any checkpoint), or none ("none": a graceful stop)
_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from sparse_orl.job import hooks

    SIG, SECOND = getattr(signal, sys.argv.pop(1)), sys.argv.pop(1)
    progress, checkpoint = hooks.Progress.__call__, hooks.Checkpoint.__call__

    def on_progress(self, tick):
        progress(self, tick)
        if tick.first:
            os.kill(os.getpid(), SIG)
            if SECOND == "at_once":
                os.kill(os.getpid(), SIG)

    def on_checkpoint(self, tick):
        checkpoint(self, tick)
        if tick.interrupted and SECOND == "after_checkpoint":
            os.kill(os.getpid(), SIG)

    hooks.Progress.__call__, hooks.Checkpoint.__call__ = on_progress, on_checkpoint
    from absl import app
    from launch import flags, train
    app.run(train.main, flags_parser=flags.parse_flags)
""")


def _train_signalled(tmp_path, signame, second, args):
    p = subprocess.run([sys.executable, "-c", _SCRIPT, signame, second, *args], capture_output=True, text=True,
                       env=_env(), cwd=tmp_path, timeout=600)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.slow
def test_a_second_signal_stops_at_once_naming_the_checkpoint_a_rerun_resumes_from(tmp_path):
    signame, signum = "SIGINT", signal.SIGINT  # SIGTERM: the test below
    args = _flags(_dataset(tmp_path), tmp_path / "wd")
    rc, out, err = _train_signalled(tmp_path, signame, "after_checkpoint", args)
    assert rc == 128 + signum, (rc, out, err)
    lines = [l for l in err.splitlines() if "second signal" in l]
    assert len(lines) == 1, err
    m = re.fullmatch(r"stopped at once by a second signal; a rerun resumes from the checkpoint at step (\d+)", lines[0])
    assert m, lines
    step = int(m.group(1))
    assert os.path.isdir(tmp_path / "wd" / "checkpoints" / str(step))
    assert "interrupted at step" not in out  # it did not wait for the graceful stop
    assert "Traceback" not in err
    # the rerun resumes exactly there (and stops gracefully on one signal)
    rc, out, err = _train_signalled(tmp_path, signame, "none", args)
    assert rc == 128 + signum, (rc, out, err)
    assert f"resumed from checkpoint at step {step}" in out
    later = int(re.search(r"interrupted at step (\d+); run the same command to resume", out).group(1))
    assert later > step


@pytest.mark.slow
def test_a_second_signal_before_any_checkpoint_says_a_rerun_starts_over(tmp_path):
    rc, out, err = _train_signalled(tmp_path, "SIGTERM", "at_once", _flags(_dataset(tmp_path), tmp_path / "wd"))
    assert rc == 143, (rc, out, err)
    assert [l for l in err.splitlines() if "second signal" in l] == [
        "stopped at once by a second signal; no checkpoint yet: a rerun starts over"]
    ckpts = tmp_path / "wd" / "checkpoints"
    assert not ckpts.exists() or not [n for n in os.listdir(ckpts) if n.isdigit()]


def test_python_api_raises_interrupted_with_the_step_of_its_checkpoint(tmp_path):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed from the main thread only")
    import sparse_orl
    from sparse_orl.job import Interrupted

    wd = str(tmp_path / "wd")
    kw = dict(dataset=_dataset(tmp_path), workdir=wd, algo="bc", bc_vae_only=True, vae_hidden=[8, 8], pruner="random",
              sparsity=0.5, seeds=[0], batch_size=16, steps=1_000_000, eval_every=1_000_000,
              checkpoint_every=1_000_000, eval_episodes=0, chunk_s=0.02, report=False, tensorboard=False)
    before = signal.getsignal(signal.SIGINT)

    def signalling(when):
        lines = []

        def log(m):
            lines.append(m)
            if m.startswith(when) and len([l for l in lines if l.startswith(when)]) == 1:
                os.kill(os.getpid(), signal.SIGINT)  # handled by the job's handler at once (main thread)
        return lines, log

    lines, log = signalling("compiled;")
    with pytest.raises(Interrupted) as e:
        sparse_orl.train(log=log, **kw)
    step = e.value.step
    assert 0 < step < 1_000_000 and e.value.signum == signal.SIGINT and e.value.exit_code == 130
    assert e.value.workdir == wd
    assert sorted(int(n) for n in os.listdir(os.path.join(wd, "checkpoints")) if n.isdigit()) == [step]
    assert f"interrupted at step {step}; run the same command to resume" in lines
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back
    res = sparse_orl.Result.load(wd)
    assert not res.complete
    # the same call resumes from that step
    lines, log = signalling("resumed from checkpoint")
    with pytest.raises(Interrupted) as again:
        sparse_orl.train(log=log, **kw)
    assert f"resumed from checkpoint at step {step}" in lines and again.value.step > step


def _wait_for(predicate, proc, timeout=300, what=""):
    deadline = time.time() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the trainer ended (rc {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_the_train_lock_of_a_killed_trainer_is_free_and_the_same_command_resumes(tmp_path):
    from sparse_orl.store.locks import workdir_lock

    wd = tmp_path / "wd"
    cmd = [sys.executable, "-m", "launch.train", *_flags(_dataset(tmp_path), wd, checkpoint_every=50)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    try:
        ckpts = wd / "checkpoints"
        _wait_for(lambda: ckpts.is_dir() and any(n.isdigit() for n in os.listdir(ckpts)), first,
                  what="a first checkpoint")
        lock = workdir_lock(str(wd), "train")
        assert not lock.acquire(), "the live trainer holds <workdir>/.train.lock"
        assert f"pid {first.pid} on " in lock.holder()
        first.kill()
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL
    assert os.path.exists(wd / ".train.lock")  # the file stays; the lock went with the process
    assert lock.acquire()
    lock.release()
    done = sorted(int(n) for n in os.listdir(wd / "checkpoints") if n.isdigit())
    # the same command starts, takes the lock and resumes from the newest complete checkpoint
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    try:
        resumed = None
        for line in second.stdout:
            m = re.match(r"resumed from checkpoint at step (\d+)", line)
            if m:
                resumed = int(m.group(1))
                break
        assert resumed is not None and resumed == done[-1], (resumed, done, second.stderr.read()[-2000:])
        assert f"pid {second.pid} on " in workdir_lock(str(wd), "train").holder()
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=300)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert second.returncode == 143, err
    assert "interrupted at step" in out
