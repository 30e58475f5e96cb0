"""launch.sweep: planning, sharding, refusals, locks, kill -9 and resume, corrupt files."""
import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import TINY_ID, run_launcher, start_launcher, subprocess_env
from sparse_orl import sweep as sw
from sparse_orl.algos import BCConfig, BCQConfig
from sparse_orl.config import PruneConfig
from sparse_orl.report.results import EXTRA_COLUMNS

TINY = dict(actor_hidden=(8,), critic_hidden=(8,), vae_hidden=(8,))


def _sweep(workdir, **kw):
    base = dict(workdir=str(workdir), datasets=("d/a/x-v0", "d/b/y-v0"),
                agents=(BCQConfig(**TINY), BCConfig(vae_only=True, **TINY)),
                prunes=(PruneConfig("dense"), PruneConfig("snip"), PruneConfig("grasp")),
                sparsities=(0.5, 0.9), seeds=(0, 1, 2), steps=40, eval_every=20, checkpoint_every=20)
    base.update(kw)
    return sw.SweepConfig(**base)


def _all_runs(programs):
    out = []
    for p in programs:
        out += [(p.algo, p.dataset, p.config.prunes[m].pruner, s, sp) for m, s, sp in p.config.runs]
    return out


def test_plan_groups_shapes_and_trains_dense_once_per_seed(tmp_path):
    programs = sw.plan(_sweep(tmp_path))
    assert [(p.algo, p.dataset) for p in programs] == [
        ("bcq", "d/a/x-v0"), ("bcq", "d/b/y-v0"), ("bc", "d/a/x-v0"), ("bc", "d/b/y-v0")]
    for p in programs:
        assert p.num_runs == 3 * (1 + 2 * 2)  # seeds x (dense + 2 pruners x 2 levels)
        dense = [(s, sp) for m, s, sp in p.config.runs if p.config.prunes[m].pruner == "dense"]
        assert dense == [(0, 0.0), (1, 0.0), (2, 0.0)]
        assert p.workdir == os.path.join(str(tmp_path), "programs", p.name)
    assert len({p.name for p in programs}) == 4
    # names are stable and independent of where the sweep lives
    assert [p.name for p in sw.plan(_sweep(tmp_path / "elsewhere"))] == [p.name for p in programs]
    assert programs[3].name.startswith("bc-vae_d-b-y-v0_")


@pytest.mark.parametrize("cap", [1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16])
def test_max_runs_per_program_splits_without_losing_or_repeating_runs(tmp_path, cap):
    whole = sw.plan(_sweep(tmp_path, datasets=("d/a/x-v0",), agents=(BCConfig(**TINY),)))
    split = sw.plan(_sweep(tmp_path, datasets=("d/a/x-v0",), agents=(BCConfig(**TINY),),
                           max_runs_per_program=cap))
    assert all(p.num_runs <= cap for p in split)
    assert sorted(_all_runs(split)) == sorted(_all_runs(whole))
    assert len(set(_all_runs(split))) == len(_all_runs(split))
    assert len({p.name for p in split}) == len(split)
    if cap >= 15:
        assert len(split) == 1
    elif cap >= 5:  # whole seeds per program: split over seeds first
        assert all(p.num_runs % 5 == 0 for p in split) and len(split) == -(-3 // (cap // 5))


def test_split_of_one_seed_over_pruners_then_levels():
    snip, grasp, dense = PruneConfig("snip"), PruneConfig("grasp"), PruneConfig("dense")
    parts = sw.split_runs((dense, snip, grasp), (0,), (0.5, 0.9, 0.95), 4)
    assert [(tuple(p.pruner for p in ps), lv) for ps, _, lv in parts] == [
        (("dense", "snip"), (0.5, 0.9, 0.95)), (("grasp",), (0.5, 0.9, 0.95))]
    parts = sw.split_runs((snip,), (0,), (0.5, 0.9, 0.95), 2)
    assert [lv for _, _, lv in parts] == [(0.5, 0.9), (0.95,)]


@pytest.mark.parametrize("num_shards", [1, 2, 3, 5])
def test_shards_cover_every_program_exactly_once(tmp_path, num_shards):
    programs = sw.plan(_sweep(tmp_path, max_runs_per_program=5))  # 12 programs
    names = [p.name for i in range(num_shards) for p in sw.shard(programs, num_shards, i)]
    assert sorted(names) == sorted(p.name for p in programs)
    with pytest.raises(ValueError, match="--shard_index"):
        sw.shard(programs, num_shards, num_shards)


def test_a_different_grid_on_an_existing_workdir_is_refused(tmp_path):
    assert sw.check_sweep_workdir(_sweep(tmp_path)) is False
    assert sw.check_sweep_workdir(_sweep(tmp_path)) is True  # same grid: fine
    with pytest.raises(ValueError, match=r"holds a different sweep.*seeds: \[0, 1, 2\] -> \[0, 1\]"):
        sw.check_sweep_workdir(_sweep(tmp_path, seeds=(0, 1)))
    with pytest.raises(ValueError, match=r"different sweep.*steps"):
        sw.run_sweep(_sweep(tmp_path, steps=80), log=lambda m: None)
    assert sw.load_sweep(str(tmp_path)).grid() == _sweep(tmp_path).grid()
    with open(tmp_path / "sweep.json", "w") as f:
        f.write('{"version": 1, "grid": {"datas')
    with pytest.raises(ValueError, match=r"sweep\.json is corrupt or truncated"):
        sw.check_sweep_workdir(_sweep(tmp_path))


def test_a_locked_program_is_skipped(tmp_path):
    sweep = _sweep(tmp_path, datasets=("d/a/x-v0",), agents=(BCConfig(**TINY),))
    (program,) = sw.plan(sweep)
    held = sw.program_lock(str(tmp_path), program.name)
    assert held.acquire()
    try:
        logs = []
        out = sw.run_sweep(sweep, log=logs.append)  # would fail loading the fake dataset if it ran
        assert out["locked"] == [program.name] and out["ran"] == []
        assert any(f"locked by pid {os.getpid()}" in m and "skipping" in m for m in logs), logs
    finally:
        held.release()
    # a lock dies with its holder, SIGKILL included
    path = os.path.join(str(tmp_path), "locks", program.name + ".lock")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"), path],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert not sw.program_lock(str(tmp_path), program.name).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock = sw.program_lock(str(tmp_path), program.name)
    assert lock.acquire()
    lock.release()


# ---- end to end: a real sweep, killed with SIGKILL and restarted --------------------------------
ARGS = ["--datasets=" + TINY_ID, "--algos=bc", "--bc_vae_only", "--pruners=dense,snip", "--sparsities=0.5,0.9",
        "--seeds=0,1", "--steps=80", "--eval_every=20", "--checkpoint_every=20", "--eval_episodes=2",
        "--eval_max_episode_steps=8", "--batch_size=16", "--vae_hidden=8", "--actor_hidden=8", "--critic_hidden=8",
        "--max_runs_per_program=3"]


def _launch(workdir, env, cwd, extra=()):
    return start_launcher("launch.sweep", [*ARGS, *extra, f"--workdir={workdir}"], cwd, env, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def killed_and_straight(tiny_minari_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep_e2e")
    env = subprocess_env(MINARI_DATASETS_PATH=tiny_minari_root)
    straight, killed = tmp / "straight", tmp / "killed"
    a = _launch(straight, env, tmp)
    b = _launch(killed, env, tmp)
    deadline = time.time() + 240
    while not glob.glob(str(killed / "programs" / "**" / "checkpoints" / "20"), recursive=True):
        assert b.poll() is None, b.communicate()[0][-3000:]
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    b.send_signal(signal.SIGKILL)
    b.wait()
    interrupted = not os.path.exists(killed / "results.jsonl")
    # a summary torn by the kill (simulated): the restart moves it aside and rebuilds it
    # (a sweep program's own summary, or, where its job trains as several programs, one of theirs)
    torn = sorted(glob.glob(str(killed / "programs" / "**" / "summary.json"), recursive=True))[0]
    with open(torn, "r+") as f:
        f.truncate(100)
    out_a = a.communicate(timeout=300)[0]
    assert a.returncode == 0, out_a[-3000:]
    c = _launch(killed, env, tmp)
    out_c = c.communicate(timeout=300)[0]
    assert c.returncode == 0, out_c[-3000:]
    return dict(straight=straight, killed=killed, interrupted=interrupted, out_a=out_a, out_c=out_c, env=env,
                tmp=tmp, torn=torn)


@pytest.mark.slow
def test_sweep_killed_midway_resumes_to_identical_results(killed_and_straight):
    k = killed_and_straight
    assert k["interrupted"], "the sweep finished before it could be killed; the test proved nothing"
    assert "resuming (checkpoints at steps [20" in k["out_c"], k["out_c"][-3000:]
    if os.path.dirname(os.path.dirname(k["torn"])) == str(k["killed"] / "programs"):  # the sweep program's
        assert "summary.json was corrupt or truncated; moved to" in k["out_c"], k["out_c"][-3000:]
        assert glob.glob(k["torn"] + ".corrupt-*")
    else:  # one of the job's own programs
        assert f"{k['torn']} is corrupt" in k["out_c"] and "rebuilding it from the checkpoints" in k["out_c"], \
            k["out_c"][-3000:]
    rows_a = sw.load_results(str(k["straight"]))
    rows_b = sw.load_results(str(k["killed"]))
    assert len(rows_a) == 2 * (1 + 2) * 4  # 2 seeds x (dense + 2 levels) x 4 evaluations
    assert rows_a == rows_b  # returns and normalized scores exactly equal
    assert {round(r["sparsity_vae"], 2) for r in rows_a if r["pruner"] == "snip"} == {0.5, 0.9}
    columns = list(sw.BASE_COLUMNS) + ["sparsity_vae"] + list(EXTRA_COLUMNS) + ["program"]
    assert set(rows_a[0]) == set(columns)
    with open(k["straight"] / "results.csv") as f:
        assert f.readline().strip().split(",") == columns
    # re-running a finished sweep trains nothing
    again = _launch(k["straight"], k["env"], k["tmp"])
    out = again.communicate(timeout=120)[0]
    assert again.returncode == 0 and out.count("complete; skipping") == 2, out[-2000:]


@pytest.mark.slow
def test_dry_run_and_bad_flags(killed_and_straight):
    k = killed_and_straight
    p = _launch(k["straight"], k["env"], k["tmp"], ["--dry_run"])
    out = p.communicate(timeout=120)[0]
    assert p.returncode == 0, out[-2000:]
    assert "2 program(s), 6 runs" in out and "ESTIMATES" in out and "steps/s" in out
    assert out.count(" done ") == 2  # status column of both programs
    bad = run_launcher("launch.sweep", [*ARGS, "--algos=bc,foo", "--workdir=x"], k["tmp"], k["env"])
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith("error: --algos")
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
def test_corrupt_results_and_summary_files(killed_and_straight, tmp_path):
    k = killed_and_straight
    wd = str(tmp_path / "copy")
    shutil.copytree(k["straight"], wd)
    good = sw.load_results(wd)
    path = os.path.join(wd, "results.jsonl")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"results\.jsonl is (truncated|corrupt)"):
        sw.load_results(wd)
    # collecting again (what a re-run of the finished sweep does) rewrites it from the summaries
    sw.collect_results(wd, log=lambda m: None)
    assert sw.load_results(wd) == good
    # a corrupt summary: a clear error naming it
    (program, *_) = sw.plan(sw.load_sweep(wd))
    with open(os.path.join(program.workdir, "summary.json"), "r+") as f:
        f.truncate(100)
    with pytest.raises(ValueError, match=r"summary .*summary\.json is corrupt or truncated"):
        sw.collect_results(wd, log=lambda m: None)


@pytest.mark.slow
def test_program_folders_named_by_an_older_hash_are_found(killed_and_straight, tmp_path):
    """A library upgrade that hashes program configs differently must not restart a finished sweep:
    program folders are found by their config.json."""
    wd = tmp_path / "renamed"
    shutil.copytree(k_straight := killed_and_straight["straight"], wd)
    for folder in sorted((wd / "programs").iterdir()):
        folder.rename(folder.with_name(folder.name.rsplit("_", 1)[0] + "_0123456789"))  # an "old" hash
    sweep = sw.load_sweep(str(wd))
    names = [p.name for p in sw.plan(sweep)]
    assert all(n.endswith("_0123456789") for n in names) and len(names) == 2
    out = sw.run_sweep(sweep, log=lambda m: None)
    assert sorted(out["done"]) == sorted(names) and out["ran"] == []
    strip = lambda rows: [{k: v for k, v in r.items() if k != "program"} for r in rows]  # noqa: E731
    assert strip(sw.load_results(str(wd))) == strip(sw.load_results(str(k_straight)))


@pytest.mark.slow
def test_dry_run_estimates_a_dataset_that_is_not_on_disk_and_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "empty"))
    sweep = _sweep(tmp_path / "sw", datasets=("mujoco/hopper/expert-v0",), agents=(BCConfig(vae_only=True, **TINY),),
                   prunes=(PruneConfig("dense"), PruneConfig("erk_random")), sparsities=(0.95,), seeds=(0,))
    lines = []
    sw.run_sweep(sweep, dry_run=True, log=lines.append)
    text = "\n".join(lines)
    assert "datasets not on disk: mujoco/hopper/expert-v0" in text
    assert "MISSING DATASETS (not on disk; estimated from their environments' spaces): mujoco/hopper/expert-v0" in text
    assert "steps/s per run measured" in text
    assert not os.path.exists(tmp_path / "sw" / "sweep.json")  # a dry run writes nothing


def test_a_bad_dataset_stops_the_sweep_before_anything_trains(tiny_minari_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_minari_root))
    sweep = _sweep(tmp_path / "sw", datasets=(TINY_ID, "test/hopper/typo-v0"), agents=(BCConfig(vae_only=True, **TINY),),
                   prunes=(PruneConfig("dense"),), seeds=(0,), eval_episodes=0)
    with pytest.raises(ValueError, match=r"--datasets: .*typo-v0"):
        sw.run_sweep(sweep, log=lambda m: None)
    assert not glob.glob(str(tmp_path / "sw" / "programs" / "*" / "checkpoints" / "*"))
