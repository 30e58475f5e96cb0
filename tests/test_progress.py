"""What the terminal shows while a job trains: the progress line's cadence (a fake clock, no sleeping) and
MuJoCo's warnings (the known ``settotalmass`` deprecation dropped, every other one passed on)."""
import types
import warnings

import numpy as np
import pytest

from sparse_orl.job import hooks
from sparse_orl.job.loop import Tick


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def time(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(hooks, "time", types.SimpleNamespace(time=c.time))  # hooks' own view of time only
    return c


def _progress(every_s, lines):
    record = hooks.Record(labels=["dense", "snip"], seeds=[0, 0], sparsities=[0.0, 0.9], evals=[[], []],
                          nan_steps=np.array([-1, -1]))
    rows = types.SimpleNamespace(losses={"vae_loss": 0.25})
    return hooks.Progress(record, rows, lines.append, every_s), record


def _tick(step, n, seconds, first=False, at_eval=False, interrupted=False, steps=10_000):
    return Tick(step=step, steps=steps, n=n, seconds=seconds, first=first, metrics={}, states=None,
                at_eval=at_eval, interrupted=interrupted)


def test_progress_line_at_the_first_chunk_every_every_s_at_evaluations_at_a_stop_and_at_the_end(clock):
    lines = []
    progress, record = _progress(30.0, lines)
    printed = []

    def chunk(dt, tick):
        clock.t += dt
        tick.line_due = progress.due(tick)
        before = len(lines)
        progress(tick)
        printed.append(len(lines) > before)
        assert printed[-1] == tick.line_due

    chunk(20.0, _tick(100, 100, 20.0, first=True))  # the compiling chunk: a line at once
    assert lines[-1].startswith("compiled; first 100 steps of 2 runs in 20.0s")
    chunk(10.0, _tick(200, 100, 10.0))  # 10 s since the line
    chunk(19.9, _tick(300, 100, 19.9))  # 29.9 s
    chunk(0.1, _tick(310, 10, 0.1))  # 30.0 s: due
    assert lines[-1].startswith("step 310/10000 | ")
    chunk(5.0, _tick(400, 90, 5.0, at_eval=True))  # an evaluation: a line whatever the clock says
    chunk(5.0, _tick(500, 100, 5.0))  # 5 s after that line: quiet
    chunk(24.0, _tick(600, 100, 24.0))  # 29 s after it: quiet
    chunk(1.0, _tick(700, 100, 1.0, interrupted=True))  # a stop signal: a line before the job ends
    chunk(1.0, _tick(800, 100, 1.0))  # 1 s after it: quiet
    chunk(1.0, _tick(10_000, 9_200, 1.0))  # the end: a line
    assert printed == [True, False, False, True, True, False, False, True, False, True]
    assert len(lines) == 5 and lines[-1].startswith("step 10000/10000 | ")
    # the speed counts the chunks after compilation only, over the seconds they took
    assert record.train_steps == 10_000 - 100 and record.train_seconds == pytest.approx(10 + 19.9 + 0.1 + 5 + 5 + 24 + 3)
    assert "vae_loss 0.25" in lines[-1]


def test_no_line_between_evaluations_when_every_s_has_not_passed(clock):
    lines = []
    progress, _ = _progress(30.0, lines)
    first = _tick(100, 100, 1.0, first=True)
    first.line_due = progress.due(first)
    progress(first)
    for i in range(2, 200):  # 198 chunks of 0.1 s: 19.8 s in all
        clock.t += 0.1
        t = _tick(100 * i, 100, 0.1, steps=10**6)
        t.line_due = progress.due(t)
        progress(t)
    assert len(lines) == 1


def test_a_short_every_s_prints_each_chunk_once_it_has_passed(clock):
    lines = []
    progress, _ = _progress(2.0, lines)
    for i in range(1, 11):
        clock.t += 1.0
        t = _tick(100 * i, 100, 1.0, first=i == 1)
        t.line_due = progress.due(t)
        progress(t)
    assert len(lines) == 5  # the first chunk, then every second chunk (2 s each)


# ---- MuJoCo's warnings ----------------------------------------------------------------------
SETTOTALMASS_XML = """<mujoco><compiler settotalmass="2"/><worldbody><body><freejoint/><geom size="0.1"/></body>
</worldbody></mujoco>"""


@pytest.fixture
def mujoco_handler(tmp_path, monkeypatch):
    """MuJoCo's process-wide warning handler set to the library's, restored afterwards; cwd a fresh folder."""
    mujoco = pytest.importorskip("mujoco")
    from sparse_orl.job import evaluation

    monkeypatch.chdir(tmp_path)  # MuJoCo's default handler would write MUJOCO_LOG.TXT here
    old = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(evaluation._mujoco_warning)
    yield mujoco
    mujoco.set_mju_user_warning(old)


def test_the_settotalmass_deprecation_is_dropped_and_other_mujoco_warnings_become_python_warnings(mujoco_handler,
                                                                                                 tmp_path):
    from sparse_orl.job.evaluation import _mujoco_warning

    mujoco = mujoco_handler
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _mujoco_warning("XML Warning: compiler attribute 'settotalmass' is deprecated and will be removed")
        _mujoco_warning("Nan, Inf or huge value in QACC at DOF 0. The simulation is unstable.")
        # the real ones: a model compile with settotalmass (what gymnasium's MuJoCo envs do on every reset)...
        model = mujoco.MjModel.from_xml_string(SETTOTALMASS_XML)
        # ...and a simulation that blows up
        data = mujoco.MjData(model)
        data.qpos[0] = np.nan
        mujoco.mj_step(model, data)
    messages = [str(w.message) for w in caught]
    assert all(w.category is RuntimeWarning for w in caught)
    assert not any("settotalmass" in m for m in messages), messages
    assert messages[0] == "MuJoCo: Nan, Inf or huge value in QACC at DOF 0. The simulation is unstable."
    assert len(messages) == 2 and messages[1].startswith("MuJoCo: Nan, Inf or huge value in QPOS"), messages
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_quiet_mujoco_installs_the_handler_only_where_none_was_set(mujoco_handler):
    from sparse_orl.job.evaluation import _mujoco_warning, quiet_mujoco

    mujoco = mujoco_handler
    mujoco.set_mju_user_warning(None)
    quiet_mujoco()
    assert mujoco.get_mju_user_warning() is _mujoco_warning
    mine = []
    mujoco.set_mju_user_warning(mine.append)
    quiet_mujoco()  # the caller's own handler wins
    mujoco.MjModel.from_xml_string(SETTOTALMASS_XML)
    assert len(mine) == 1 and "settotalmass" in mine[0]
