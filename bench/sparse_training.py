"""Whole training steps, compact against masked against narrow against dense, per algorithm and sparsity.

For each algorithm (VAE-only BC and BCQ at batch 100 with 750-750 / 400-300 networks; TD3+BC and IQL
at 256-256, batch 256; HalfCheetah shapes, synthetic data) and each sparsity level, four programs
of the same runs train side by side, timed in interleaved rounds (median of ``--reps``):

* ``masked``: random+ERK masks multiplied into dense kernels (what the library trained until now);
* ``compact``: the same masks, every pruned kernel as kept values + indices on the CPU kernels;
* ``narrow``: the dense network with as many weights as the sparse one keeps (``--pruner=narrow``);
* ``dense``: the full dense network (of the base widths).

``--width_multiplier=K`` times every hidden width of the masked and compact networks (sparse-wide: pair it
with the sparsity that keeps the base level's weights, e.g. TD3+BC K=2 at 0.98695 ≈ 95% of 256-256); the
narrow network matches the wide sparse one's kept weights, and dense stays at the base widths.

Speeds are run-steps per second (steps of every run of the program per second): one unit for every
contender. Bytes are one run's params + optimizer state (Adam's moments and the masks / validity
vectors; Polyak targets listed apart). Each run count runs in its own worker process with the CPU
devices ``--cpu_devices=auto`` would give a job of that many runs (1 run: one device on every core;
6 runs: one single-threaded device per core)::

    python bench/sparse_training.py                                # everything (tens of minutes)
    python bench/sparse_training.py --algos=vae_bc --sparsities=0.95 --runs=1 --out=bench.json
    python bench/sparse_training.py --algos=td3bc --sparsities=0.98695 --width_multiplier=2 --runs=1,6
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._options import parse  # noqa: E402
from sparse_orl.fields import option  # noqa: E402

VARIANTS = ("masked", "compact", "narrow", "dense")
# benchmark name -> (algorithm, config fields, batch)
ALGOS = {"vae_bc": ("bc", {"vae_only": True}, 100), "bcq": ("bcq", {}, 100), "td3bc": ("td3bc", {}, 256),
         "iql": ("iql", {}, 256)}
OBS_DIM, ACT_DIM = 17, 6  # HalfCheetah


@dataclasses.dataclass(frozen=True)
class Options:
    algos: Tuple[str, ...] = option(("vae_bc", "bcq", "td3bc", "iql"), "Algorithms: vae_bc, bcq, td3bc, iql.")
    sparsities: Tuple[float, ...] = option((0.9, 0.95, 0.98), "Sparsity levels.", low=0, high=1, high_open=True)
    runs: Tuple[int, ...] = option((1, 6), "Runs per program (one worker process per count).", low=1)
    steps: int = option(50, "Training steps per timed sample.", low=1)
    reps: int = option(7, "Interleaved rounds; the median is reported.", low=1)
    width_multiplier: float = option(1.0, "Hidden widths of the masked and compact networks times this.", low=1)
    out: str = option("", "Also write the results to this JSON file.")
    worker: int = option(0, "Internal: run the programs of this many runs and print JSON.", low=0)


def _devices(runs: int) -> int:
    from sparse_orl.trainer.devices import auto_cpu_devices, split_cpu

    n = auto_cpu_devices(runs)
    split_cpu(n)
    return n


def _nbytes(tree) -> int:
    import jax

    return int(sum(x.nbytes for x in jax.tree_util.tree_leaves(tree)))


def _programs(algo_name: str, sparsity: float, runs: int, mesh, data, cache: Dict, width: float = 1.0):
    """{variant: (agent, run states)} of one (algorithm, sparsity, run count)."""
    import jax
    import jax.numpy as jnp

    from sparse_orl.algos import make_algorithm, make_config
    from sparse_orl.config import PruneConfig
    from sparse_orl.job.narrow import narrow_config
    from sparse_orl.trainer import compact, init_runs
    from sparse_orl.trainer.sharding import padded_num_runs, runs_sharding, to_global

    algo, fields, _ = ALGOS[algo_name]
    cfg = make_config(algo, **fields)
    r_pad = padded_num_runs(runs, mesh)

    def stack(agent, prune, s):
        st = init_runs(agent, prune, data, list(range(r_pad)), [s] * r_pad)
        return to_global(st, runs_sharding(mesh))

    base = make_algorithm(cfg, OBS_DIM, ACT_DIM, 1.0)
    if width != 1.0:
        cfg = cfg.widened(width, base.networks, base.network_specs)
    full = make_algorithm(cfg, OBS_DIM, ACT_DIM, 1.0)
    out = {}
    masked = stack(full, PruneConfig("erk_random"), sparsity)
    host = jax.device_get(masked.agent)
    plan = compact.plan_layers(host.params, host.masks, "compact", ALGOS[algo_name][2])
    out["masked"] = (full, masked)
    twin = jax.tree_util.tree_map(jnp.copy, masked)  # programs donate their states: no shared arrays
    out["compact"] = (full, to_global(twin.replace(agent=compact.to_compact(full, twin.agent, plan)),
                                      runs_sharding(mesh)))
    narrow_cfg, _ = narrow_config(cfg, OBS_DIM, ACT_DIM, 1.0, sparsity)
    narrow = make_algorithm(narrow_cfg, OBS_DIM, ACT_DIM, 1.0)
    out["narrow"] = (narrow, stack(narrow, PruneConfig("dense"), 0.0))
    if "dense" not in cache:
        cache["dense"] = (base, stack(base, PruneConfig("dense"), 0.0))
    out["dense"] = cache["dense"]
    return out


def worker(o: Options) -> List[Dict]:
    n_devices = _devices(o.worker)
    import jax
    import numpy as np

    from sparse_orl.data.transitions import Transitions
    from sparse_orl.trainer import make_train_chunk
    from sparse_orl.trainer.sharding import replicated, runs_mesh, to_global

    mesh = runs_mesh()
    rng = np.random.default_rng(0)
    n = 20_000
    t = Transitions(obs=rng.normal(size=(n, OBS_DIM)).astype(np.float32),
                    action=rng.uniform(-1, 1, (n, ACT_DIM)).astype(np.float32),
                    reward=rng.normal(size=n).astype(np.float32),
                    next_obs=rng.normal(size=(n, OBS_DIM)).astype(np.float32),
                    done=(rng.uniform(size=n) < 0.01).astype(np.float32))
    data = to_global(jax.tree_util.tree_map(jax.numpy.asarray, t), replicated(mesh))
    results = []
    for algo_name in o.algos:
        cache: Dict = {}
        batch = ALGOS[algo_name][2]
        for s in o.sparsities:
            progs = _programs(algo_name, s, o.worker, mesh, data, cache, o.width_multiplier)
            chunks = {v: make_train_chunk(agent, batch, o.steps, mesh) for v, (agent, _) in progs.items()}
            states = {v: st for v, (_, st) in progs.items()}
            for v in VARIANTS:  # compile and warm up
                states[v], m = chunks[v](states[v], data)
                jax.block_until_ready(m)
            times: Dict[str, List[float]] = {v: [] for v in VARIANTS}
            for _ in range(o.reps):
                for v in VARIANTS:
                    t0 = time.perf_counter()
                    states[v], m = chunks[v](states[v], data)
                    jax.block_until_ready(m)
                    times[v].append(time.perf_counter() - t0)
            cache["dense"] = (progs["dense"][0], states["dense"])  # its donated input is gone
            for v in VARIANTS:
                a = jax.tree_util.tree_map(lambda x: x[0], states[v].agent)
                results.append({
                    "algo": algo_name, "sparsity": s, "width_multiplier": o.width_multiplier, "runs": o.worker,
                    "devices": n_devices, "variant": v,
                    "run_steps_per_s": o.steps * o.worker / statistics.median(times[v]),
                    "bytes_params_opt": _nbytes((a.params, a.opt_state)), "bytes_targets": _nbytes(a.target_params),
                    "samples_s": times[v]})
            print(f"  {algo_name} {s:g} x{o.worker}: " + ", ".join(
                f"{r['variant']} {r['run_steps_per_s']:.0f}" for r in results[-len(VARIANTS):]),
                file=sys.stderr, flush=True)
    return results


def table(results: List[Dict]) -> str:
    from sparse_orl.report.data import pct

    by = {(r["algo"], r["sparsity"], r["runs"], r["variant"]): r for r in results}
    lines = ["| algorithm | sparsity | runs | masked | compact | narrow | dense | compact / masked | "
             "narrow / compact | bytes masked | bytes compact | compact / masked bytes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for algo, s, runs in sorted({k[:3] for k in by}, key=lambda k: (list(ALGOS).index(k[0]), k[1], k[2])):
        r = {v: by[(algo, s, runs, v)] for v in VARIANTS}
        sp = {v: r[v]["run_steps_per_s"] for v in VARIANTS}
        b = {v: r[v]["bytes_params_opt"] for v in VARIANTS}
        w = r["masked"].get("width_multiplier", 1.0)
        name = f"{algo} ×{w:g}" if w != 1.0 else algo
        lines.append(f"| {name} | {pct(s)} | {runs} | {sp['masked']:,.0f} | {sp['compact']:,.0f} | {sp['narrow']:,.0f} | "
                     f"{sp['dense']:,.0f} | **{sp['compact'] / sp['masked']:.2f}x** | "
                     f"{sp['narrow'] / sp['compact']:.2f}x | {b['masked']:,} | {b['compact']:,} | "
                     f"{b['compact'] / b['masked']:.3f} |")
    return "\n".join(lines)


def main(argv):
    o = parse(Options, argv)
    if o.worker:
        print(json.dumps(worker(o)))
        return
    results = []
    for runs in o.runs:
        cmd = [sys.executable, os.path.abspath(__file__), f"--worker={runs}", f"--algos={','.join(o.algos)}",
               f"--sparsities={','.join(map(str, o.sparsities))}", f"--steps={o.steps}", f"--reps={o.reps}",
               f"--width_multiplier={o.width_multiplier}"]
        print(f"runs={runs}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
        if p.returncode != 0:
            sys.exit(f"worker for {runs} run(s) failed:\n{p.stderr[-3000:]}")
        sys.stderr.write(p.stderr)
        results += json.loads(p.stdout.strip().splitlines()[-1])
    print(table(results))
    if o.out:
        meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or
                platform.machine(), "cpus": os.cpu_count(), "command": " ".join(["python"] + sys.argv)}
        with open(o.out, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
