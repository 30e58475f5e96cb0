"""The README's launcher commands on a tiny dataset: their numbers, to compare two versions of the code.

    python tests/tools/readme_commands.py record OUT.json [--repo=PATH] [--extra=FLAG]
    python tests/tools/readme_commands.py compare A.json B.json

``record`` runs launch.train (three algorithms, narrow and --prune_networks included), launch.sweep,
launch.evaluate, launch.report and an export + deploy from ``--repo`` (default: this checkout) on a
tiny Hopper dataset made here, and writes every number they produce. ``compare`` says where two
records differ. A refactor must leave the record unchanged (on the same machine).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SMALL = ["--steps=40", "--eval_every=20", "--checkpoint_every=20", "--eval_episodes=2",
         "--eval_max_episode_steps=25", "--notensorboard"]
JOBS = {
    "bc_vae": ["--algo=bc", "--bc_vae_only", "--pruner=none,snip,erk_random", "--sparsity=0.95", "--seeds=0",
               "--vae_hidden=32,32", "--noreport"],
    "td3bc_narrow": ["--algo=td3bc", "--pruner=erk_random,synflow,narrow", "--sparsity=0.9", "--seeds=0,1",
                     "--actor_hidden=16,16", "--critic_hidden=16,16", "--batch_size=32", "--synflow_rounds=5",
                     "--noreport"],
    "iql_critics": ["--algo=iql", "--pruner=none,snip", "--prune_networks=critic,value", "--sparsity=0.9",
                    "--seeds=0", "--actor_hidden=16,16", "--critic_hidden=16,16", "--value_hidden=16,16",
                    "--batch_size=32", "--noreport"],
    "bcq": ["--algo=bcq", "--pruner=grasp,random", "--sparsity=0.8", "--seeds=1", "--actor_hidden=16,16",
            "--critic_hidden=16,16", "--vae_hidden=16,16", "--report"],
}
SWEEP = ["--algos=bc", "--bc_vae_only", "--pruners=none,snip,grasp,random", "--sparsities=0.5,0.9", "--seeds=0,1",
         "--vae_hidden=24,24", "--steps=40", "--eval_every=20", "--checkpoint_every=20", "--eval_episodes=2",
         "--eval_max_episode_steps=25"]


def _run(repo, env, args):
    p = subprocess.run([sys.executable, "-m"] + args, cwd=repo, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return p.stdout


def _summary_numbers(summary):
    runs = []
    for r in summary["runs"]:
        runs.append({k: r.get(k) for k in ("pruner", "sparsity", "seed", "status", "nan_step")}
                    | {"evals": [[e["step"], e["returns"], e["normalized_score"]] for e in r.get("evals", [])],
                       "kept": {n: m["kept"] for n, m in r.get("masks", {}).items()}})
    return runs


def record(out, repo, extra=()):
    sys.path.insert(0, os.path.dirname(HERE))
    from conftest import make_minari

    tmp = tempfile.mkdtemp(prefix="readme_commands-")
    env = dict(os.environ, MINARI_DATASETS_PATH=tmp, JAX_PLATFORMS="cpu")
    cwd = os.getcwd()
    os.chdir(tmp)
    os.environ["MINARI_DATASETS_PATH"] = tmp
    make_minari("test/hopper/launch-v0", episodes=8, max_steps=40)
    os.chdir(cwd)
    data = "test/hopper/launch-v0"
    rec = {}
    for name, args in JOBS.items():
        wd = os.path.join(tmp, name)
        _run(repo, env, ["launch.train", f"--dataset={data}", f"--workdir={wd}"] + SMALL + args + list(extra))
        with open(os.path.join(wd, "summary.json")) as f:
            rec[f"train/{name}"] = _summary_numbers(json.load(f))
    wd = os.path.join(tmp, "bc_vae")
    _run(repo, env, ["launch.evaluate", f"--workdir={wd}", "--episodes=2", "--max_episode_steps=25"])
    with open(os.path.join(wd, "evaluate.json")) as f:
        rec["evaluate/bc_vae"] = [[r["pruner"], r["seed"], r["sparsity"], r["returns"]] for r in json.load(f)["runs"]]
    sw = os.path.join(tmp, "sweep")
    _run(repo, env, ["launch.sweep", f"--datasets={data}", f"--workdir={sw}"] + SWEEP + list(extra))
    with open(os.path.join(sw, "results.jsonl")) as f:
        rec["sweep/results"] = [{k: v for k, v in json.loads(line).items() if k != "program"} for line in f]
    rep = os.path.join(tmp, "report")
    _run(repo, env, ["launch.report", f"--workdir={sw}", f"--out={rep}"])
    with open(os.path.join(rep, "report.md")) as f:
        rec["report/tables"] = [line for line in f if line.startswith("|")]
    code = ("import sys, numpy as np; sys.path.insert(0, '.'); from sparse_orl.export import export_run; "
            "from sparse_orl import deploy; n = export_run(sys.argv[1], 2, sys.argv[2]); "
            "p = deploy.Policy.load(sys.argv[2]); o = np.linspace(-1, 1, 11 * 3).reshape(3, 11).astype(np.float32); "
            "print(n); print(repr(np.asarray(p.act(o, rng=np.random.default_rng(0))).tolist()))")
    p = subprocess.run([sys.executable, "-c", code, wd, os.path.join(tmp, "policy.sorl")], cwd=repo, env=env,
                       capture_output=True, text=True)
    rec["export/bc_vae_run2"] = p.stdout.split("\n")[:2] if p.returncode == 0 else f"failed: {p.stderr[-500:]}"
    with open(out, "w") as f:
        json.dump(rec, f, indent=1)
    print(f"wrote {out}")


RENAMED = {"none": "dense", "random+erk": "erk_random"}  # deliberate renames since the first record
NEW_KEYS = ("max_transitions", "width_multiplier")  # result columns added since


def _normalize(x):
    if isinstance(x, dict):
        return {k: (RENAMED.get(v, v) if k == "pruner" else _normalize(v)) for k, v in x.items() if k not in NEW_KEYS}
    if isinstance(x, list):
        return [_normalize(v) for v in x]
    return RENAMED.get(x, x) if isinstance(x, str) else x


def compare(a, b):
    with open(a) as f:
        ra = _normalize(json.load(f))
    with open(b) as f:
        rb = _normalize(json.load(f))
    bad = [k for k in sorted(set(ra) | set(rb)) if ra.get(k) != rb.get(k)]
    for k in bad:
        print(f"DIFFERS: {k}")
    print("same" if not bad else f"{len(bad)} of {len(set(ra) | set(rb))} records differ")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "record":
        repo = next((a.split("=", 1)[1] for a in sys.argv[3:] if a.startswith("--repo=")), os.path.dirname(os.path.dirname(HERE)))
        extra = [a.split("=", 1)[1] for a in sys.argv[3:] if a.startswith("--extra=")]
        record(sys.argv[2], os.path.abspath(repo), extra)
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
