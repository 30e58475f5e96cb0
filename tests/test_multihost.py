"""Two processes (jax.distributed, 2 CPU devices each) run one experiment: same results as one process.

Every side runs in its own subprocess (the device count and the distributed client are
fixed when JAX starts): processes 0 and 1 of a 2-process job on localhost, each with 2
forced CPU devices and gloo CPU collectives (jax's default), sharing one workdir; and a
single process with 4 forced CPU devices (the same mesh size, so the same per-device
programs). Each side trains 3 runs (padded to 4), stops at step 10 as a kill would, then
resumes from the orbax checkpoint and finishes; only process 0 writes the files.
"""
import json
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import TINY_ID, error_lines, final_runs, run_launcher, subprocess_env
from sparse_orl.store.atomic import read_jsonl

pytestmark = pytest.mark.slow  # every test starts processes

# the launchers' device flags: --distributed --coordinator_address=... --num_processes=2 --process_id=i
# (--cpu_devices=1: the forced device count stays as set)
DEVICES = textwrap.dedent(r"""
    import json, sys
    import jax
    from launch import flags as flags_lib
    from sparse_orl.trainer.devices import DeviceConfig, apply_devices

    workdir, dataset = sys.argv[1], sys.argv[2]
    OPTIONS = flags_lib.class_options(DeviceConfig)
    flags_lib.define(OPTIONS)
    flags_lib.FLAGS(["worker", "--cpu_devices=1"] + sys.argv[3:])
    apply_devices(flags_lib.build(DeviceConfig, OPTIONS), runs_per_program=3)
""")

SCRIPT = DEVICES + textwrap.dedent(r"""
    from sparse_orl.algos import BCConfig
    from sparse_orl.config import ExperimentConfig, PruneConfig
    from sparse_orl.job import run_experiment

    cfg = ExperimentConfig(
        dataset=dataset, workdir=workdir,
        agent=BCConfig(vae_only=True, vae_hidden=(16, 16)),
        prunes=(PruneConfig("snip", score_batch=40),), seeds=(0, 1, 2), sparsities=(0.5,),
        steps=20, batch_size=16, eval_every=10, eval_episodes=2, checkpoint_every=10,
        eval_max_episode_steps=5,
        sparse_format="masked",  # what several processes train; the single process the same programs
    )
    logs = []
    first = run_experiment(cfg, log=logs.append, stop_at=10)  # as if killed after the step-10 checkpoint
    summary = run_experiment(cfg, log=logs.append)  # resumes from it
    print("INFO " + json.dumps({"process": jax.process_index(), "processes": jax.process_count(),
                                "devices": len(jax.devices()), "local_devices": len(jax.local_devices()),
                                "first": {"complete": first.complete, "step": first.step, "runs": len(first.runs)},
                                "summary": summary.to_json(), "logs": logs}), flush=True)
""")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(workdir, flag_args, devices, minari_root, cwd, script=SCRIPT):
    env = subprocess_env(MINARI_DATASETS_PATH=minari_root)
    flags_ = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    env["XLA_FLAGS"] = " ".join(flags_ + [f"--xla_force_host_platform_device_count={devices}"])
    return subprocess.Popen([sys.executable, "-c", script, str(workdir), TINY_ID, *flag_args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(cwd))


def _finish_all(procs, timeout=240):
    """Wait for every process; if one fails, stop the others (they would wait for it forever)."""
    deadline = time.time() + timeout
    while any(p.poll() is None for p in procs):
        if any(p.returncode not in (None, 0) for p in procs) or time.time() > deadline:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            break
        time.sleep(0.2)
    outs = []
    for p in procs:
        stdout, stderr = p.communicate()
        assert p.returncode == 0, f"exit {p.returncode}\n{stderr[-4000:]}"
        line = [l for l in stdout.splitlines() if l.startswith("INFO ")][-1]
        outs.append(json.loads(line[5:]))
    return outs


def test_two_processes_match_one_process(tiny_minari_root, tmp_path):
    multi, single = tmp_path / "multi", tmp_path / "single"
    addr = f"127.0.0.1:{_free_port()}"
    procs = [_start(multi, ["--distributed", f"--coordinator_address={addr}", "--num_processes=2",
                            f"--process_id={i}"], 2, tiny_minari_root, tmp_path) for i in range(2)]
    procs.append(_start(single, [], 4, tiny_minari_root, tmp_path))  # in parallel
    p0, p1, ref = _finish_all(procs)

    assert (p0["process"], p1["process"]) == (0, 1)
    assert p0["processes"] == p1["processes"] == 2 and ref["processes"] == 1
    assert p0["devices"] == p1["devices"] == ref["devices"] == 4
    assert p0["local_devices"] == p1["local_devices"] == 2
    # only process 0 logs; it resumed from the checkpoint the first call left
    assert p1["logs"] == [] and any("resumed from checkpoint at step 10" in m for m in p0["logs"])
    assert p0["first"] == p1["first"] == {"complete": False, "step": 10, "runs": 0}

    on_disk = json.load(open(multi / "summary.json"))
    assert on_disk["complete"] is True and on_disk["provenance"]["processes"] == 2
    assert on_disk == json.loads(json.dumps(p0["summary"]))
    assert p1["summary"]["runs"] == p0["summary"]["runs"]  # every process got every run's results
    assert (multi / "config.json").exists() and (multi / "final" / "params.npz").exists()
    ref_summary = json.load(open(single / "summary.json"))
    assert "processes" not in ref_summary["provenance"]

    # the same results as one process, bit for bit (the same per-device programs on both sides):
    # evaluations, metrics rows, final params
    a_runs, b_runs = on_disk["runs"], ref_summary["runs"]
    assert [(r["pruner"], r["seed"], r["sparsity"], r["status"]) for r in a_runs] == [
        (r["pruner"], r["seed"], r["sparsity"], r["status"]) for r in b_runs] == [
        ("snip", s, 0.5, "ok") for s in (0, 1, 2)]
    for ra, rb in zip(a_runs, b_runs):
        assert ra["masks"] == rb["masks"]
        assert [e["step"] for e in ra["evals"]] == [e["step"] for e in rb["evals"]] == [10, 20]
        for ea, eb in zip(ra["evals"], rb["evals"]):
            assert len(ea["returns"]) == 2 and np.all(np.isfinite(ea["returns"]))
            assert ea == eb
    rows_a, rows_b = read_jsonl(multi / "metrics.jsonl"), read_jsonl(single / "metrics.jsonl")
    assert len(rows_a) == 2 * 3 and rows_a == rows_b
    _, fa = final_runs(multi)
    _, fb = final_runs(single)
    assert len(fa) == len(fb) == 3
    for x, y in zip(fa, fb):
        for part in ("params", "masks"):
            for layer in x[part]["vae"]:
                for name in x[part]["vae"][layer]:
                    np.testing.assert_array_equal(x[part]["vae"][layer][name], y[part]["vae"][layer][name],
                                                  err_msg=f"{part} {layer} {name}")
        np.testing.assert_array_equal(x["obs_mean"], y["obs_mean"])


SWEEP_SCRIPT = DEVICES + textwrap.dedent(r"""
    from sparse_orl.algos import BCConfig
    from sparse_orl.config import PruneConfig
    from sparse_orl import sweep as sw

    cfg = sw.SweepConfig(
        workdir=workdir, datasets=(dataset,), agents=(BCConfig(vae_only=True, vae_hidden=(16, 16)),),
        prunes=(PruneConfig("dense"), PruneConfig("random")), sparsities=(0.5, 0.9), seeds=(0,), steps=10,
        batch_size=16, eval_every=10, eval_episodes=1, checkpoint_every=10, eval_max_episode_steps=5,
        max_runs_per_program=2)
    logs = []
    out = sw.run_sweep(cfg, log=logs.append)
    again = sw.run_sweep(cfg, log=logs.append)  # everything done: every process skips every program
    print("INFO " + json.dumps({"process": jax.process_index(), "out": out, "again": again, "logs": logs}), flush=True)
""")


def test_two_process_sweep_runs_every_program_together(tiny_minari_root, tmp_path):
    """Only process 0 takes the program locks; its decisions are broadcast, so neither process
    skips a program the other runs (which would hang both in the first collective)."""
    addr = f"127.0.0.1:{_free_port()}"
    procs = [_start(tmp_path / "sweep", ["--distributed", f"--coordinator_address={addr}", "--num_processes=2",
                                         f"--process_id={i}"], 2, tiny_minari_root, tmp_path, script=SWEEP_SCRIPT)
             for i in range(2)]
    p0, p1 = _finish_all(procs)
    assert len(p0["out"]["ran"]) == 2 and p1["out"]["ran"] == p0["out"]["ran"]  # 3 runs, at most 2 per program
    assert p0["out"]["locked"] == p1["out"]["locked"] == []
    assert sorted(p0["again"]["done"]) == sorted(p1["again"]["done"]) == sorted(p0["out"]["ran"])
    assert p1["logs"] == [] and p0["out"]["results"] is not None
    rows = read_jsonl(tmp_path / "sweep" / "results.jsonl")
    assert sorted((r["pruner"], r["sparsity"]) for r in rows) == [("dense", 0.0), ("random", 0.5), ("random", 0.9)]


def _train_cli(tmp_path, *flags):
    """launch.train in a subprocess (CPU), for its exit code and stderr."""
    return run_launcher("launch.train", [*flags, f"--dataset={TINY_ID}", f"--workdir={tmp_path / 'wd'}"], tmp_path,
                        timeout=120)


def test_cluster_flags_need_distributed(tmp_path):
    out = _train_cli(tmp_path, "--process_id=1")
    assert out.returncode == 2 and error_lines(out.stderr) == ["error: --process_id needs --distributed"]
    assert not (tmp_path / "wd").exists()


def test_distributed_without_a_cluster_is_a_clear_error(tmp_path):
    out = _train_cli(tmp_path, "--distributed")
    assert out.returncode == 2 and "error: --distributed: jax.distributed.initialize() failed" in out.stderr
    assert "Traceback" not in out.stderr
