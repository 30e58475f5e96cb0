"""The fixed commands behind ``tests/fixtures/equivalence.npz`` (refactors must not move numbers).

``python tests/equivalence.py record`` (re)writes the fixture from the current code; the test
``test_equivalence.py`` runs the same commands and compares. The dataset is synthetic, built
from numpy alone (no simulator), so the inputs are the same on every machine.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURE = os.path.join(HERE, "fixtures", "equivalence.npz")
PRUNERS = "none,snip,grasp,synflow,erk_random"
COMMON = ["--pruner=" + PRUNERS, "--sparsity=0.5,0.9", "--seeds=0", "--steps=40", "--batch_size=16",
          "--eval_every=20", "--checkpoint_every=40", "--eval_episodes=0", "--snip_batch=32", "--grasp_batch=32",
          "--synflow_rounds=10", "--noreport", "--notensorboard", "--actor_hidden=16,16", "--critic_hidden=16,12",
          "--vae_hidden=24,20"]
COMMANDS = {
    "bcq": ["--algo=bcq", "--normalize_obs"],
    "bc": ["--algo=bc"],
    "bc_vae": ["--algo=bc", "--bc_vae_only"],
}


def make_dataset(path: str, n: int = 400, obs_dim: int = 11, act_dim: int = 3) -> str:
    """A D4RL-style file of random transitions in 10 episodes (float32, seed 0)."""
    import h5py

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["next_observations"] = np.roll(obs, -1, 0)
        f["actions"] = rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32)
        f["rewards"] = rng.normal(size=n).astype(np.float32)
        f["terminals"] = np.zeros(n, bool)
        f["timeouts"] = (np.arange(n) % 40) == 39
    return path


def run_all(tmp: str) -> dict:
    """Run every command on the synthetic file; returns {name: {"losses", "params", "masks"}}."""
    data = make_dataset(os.path.join(tmp, "hopper_equivalence.hdf5"))
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    if "xla_backend_optimization_level" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
    procs = {}
    for name, extra in COMMANDS.items():
        wd = os.path.join(tmp, name)
        cmd = [sys.executable, "-m", "launch.train", f"--dataset={data}", f"--workdir={wd}"] + COMMON + extra
        procs[name] = (wd, subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            text=True))
    out = {}
    for name, (wd, p) in procs.items():
        log, _ = p.communicate(timeout=900)
        if p.returncode != 0:
            raise RuntimeError(f"{name} failed ({p.returncode}):\n{log[-3000:]}")
        out[name] = read_workdir(wd)
    return out


def read_workdir(wd: str) -> dict:
    """{"rows", "runs", "arrays"} of a finished workdir as one program: a job that trained as several
    (``programs/dense``, ``programs/main``) has its programs' runs in the summary's order, renumbered, and
    its metric rows ordered by (step, run)."""
    programs = json.load(open(os.path.join(wd, "summary.json"))).get("programs")
    folders = [wd] if not programs else [os.path.join(wd, f) for f in programs.values()]
    rows, runs, arrays = [], [], {}
    for folder in folders:
        rows += [json.loads(l) for l in open(os.path.join(folder, "metrics.jsonl"))]
        offset = len(runs)
        runs += json.load(open(os.path.join(folder, "final", "runs.json")))["runs"]
        with np.load(os.path.join(folder, "final", "params.npz")) as z:
            for k in z.files:
                i, rest = k.split("/", 1)
                arrays[f"run{int(i[3:]) + offset}/{rest}"] = z[k]
    order = [(r["pruner"], r["seed"], r["sparsity"]) for r in runs]
    rows.sort(key=lambda r: (r["step"], order.index((r["pruner"], r["seed"], r["sparsity"]))))
    return {"rows": rows, "runs": runs, "arrays": arrays}


def cpu_signature() -> str:
    """The CPU's vector extensions that change XLA's float rounding (AVX-512 vs AVX2)."""
    try:
        flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()
    except (OSError, IndexError):
        return platform.machine()
    return platform.machine() + "+" + ",".join(f for f in ("avx2", "avx512f", "amx_tile") if f in flags)


def record() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = run_all(tmp)
    flat = {"cpu": np.asarray(cpu_signature())}
    for name, r in res.items():
        flat[f"{name}/rows"] = np.asarray(json.dumps(r["rows"]))
        flat[f"{name}/runs"] = np.asarray(json.dumps(r["runs"]))
        for k, v in r["arrays"].items():
            if "/masks/" in k:
                v = v.astype(bool)
            flat[f"{name}/{k}"] = v
    np.savez_compressed(FIXTURE, **flat)
    print(f"wrote {FIXTURE} ({os.path.getsize(FIXTURE)} bytes, cpu {cpu_signature()})")


if __name__ == "__main__":
    if sys.argv[1:] != ["record"]:
        sys.exit("usage: python tests/equivalence.py record")
    record()
