"""A checkpoint that cannot be written (disk full, a file too large) is one line, not ~100 tracebacks of
``RuntimeError: Event loop is closed`` from orbax's writer threads finishing after the save gave up."""
import logging
import subprocess
import sys
import types

import pytest

from conftest import subprocess_env

# a fresh interpreter whose files may not grow past 200 kB (RLIMIT_FSIZE; SIGXFSZ ignored, so a write past
# it fails with EFBIG as a full disk fails with ENOSPC), saving three checkpoints of ~1.4 MB of random floats
FAILING_SAVES = r"""
import os, resource, signal, sys, time
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
import jax
from sparse_orl.store.checkpoint import Checkpointer, CheckpointError
state = {"a": jax.random.normal(jax.random.PRNGKey(0), (400, 400)),
         "b": [jax.random.normal(jax.random.PRNGKey(i), (100, 100)) for i in range(12)]}
ckpt = Checkpointer(sys.argv[1])
for step in (1, 2, 3):
    try:
        ckpt.save(step, state, {"step": step})
        print("saved", step)
    except CheckpointError as e:
        print("error:", e, file=sys.stderr)
time.sleep(1.0)  # the writer threads finish (and used to print) after save has returned
import gc; gc.collect()
"""


@pytest.mark.slow
def test_failing_saves_print_one_line_each_and_nothing_else(tmp_path):
    p = subprocess.run([sys.executable, "-c", FAILING_SAVES, str(tmp_path / "ckpt")], capture_output=True, text=True,
                       env=subprocess_env(), cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = p.stderr.splitlines()
    assert "Event loop is closed" not in p.stderr and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert len(lines) == 3, p.stderr[-3000:]  # one line per failed save, at most a few in all
    for step, line in zip((1, 2, 3), lines):
        assert line.startswith(f"error: checkpoint of step {step} not written") and "File too large" in line, line


def test_only_closed_loop_noise_is_dropped(tmp_path):
    """The hook drops ``RuntimeError('Event loop is closed')`` and hands every other unraisable exception
    to the hook that was there before; it is installed once however many checkpointers there are."""
    from sparse_orl.store import checkpoint

    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        checkpoint.Checkpointer(str(tmp_path / "a")).close()
        checkpoint.Checkpointer(str(tmp_path / "b")).close()
        hook = sys.unraisablehook
        assert hook is not seen.append and getattr(hook, "drops_closed_loop_noise", False)
        noise = types.SimpleNamespace(exc_value=RuntimeError("Event loop is closed"))
        real = types.SimpleNamespace(exc_value=RuntimeError("something else"))
        other = types.SimpleNamespace(exc_value=OSError(28, "No space left on device"))
        for u in (noise, real, other):
            hook(u)
        assert seen == [real, other]
    finally:
        sys.unraisablehook = old


def test_abandoned_write_records_pass_until_a_save_fails(monkeypatch):
    from sparse_orl.store import checkpoint

    flag = checkpoint.threading.Event()
    monkeypatch.setattr(checkpoint, "_SAVE_FAILED", flag)
    f = checkpoint._AbandonedWrites()

    def record(msg):
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, None, None)

    abandoned = record("Task exception was never retrieved\nfuture: <Task finished name='Task-7'>")
    other = record("Exception in callback Foo()")
    assert f.filter(abandoned) and f.filter(other)
    flag.set()
    assert not f.filter(abandoned) and f.filter(other)
