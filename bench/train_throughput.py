"""Training throughput: gradient steps/s of BCQ, BC and BC-VAE-only, many runs in one program.

For every (env, algo, number of runs) it compiles one ``make_train_chunk``
program per variant -- dense (pruner "none") and masked (random masks at
``--sparsity``; the same code path, masks are data) -- and times chunks of
``--steps`` steps, interleaving the variants repeat by repeat. Reported:
aggregate steps/s (summed over runs), per-run steps/s, compile time, and the
achieved GFLOP/s of the hand-counted dense FLOPs of one step
(``_common.step_flops``) against the fp32 matmul peak measured in the same run.

    python bench/train_throughput.py                       # the full matrix (long)
    python bench/train_throughput.py --quick               # a smoke run (a few minutes on 2 cores)
    python bench/train_throughput.py --algos bcq --envs halfcheetah --runs 1,5 --out r.json
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import _common as C  # noqa: E402
from bench._options import parse  # noqa: E402
from sparse_orl.fields import option  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Options:
    algos: Tuple[str, ...] = option(("bcq", "bc", "bc_vae"), "Algorithms (td3bc and iql: 256-256, batch 256).",
                                    choices=tuple(C.ALGOS))
    envs: Tuple[str, ...] = option(("hopper", "halfcheetah"), "Environment shapes.", choices=tuple(C.ENVS))
    runs: Tuple[int, ...] = option((1, 5, 15, 40), "Numbers of runs in one program.", low=1)
    variants: Tuple[str, ...] = option(("dense", "masked"), "Variants timed.", choices=("dense", "masked"))
    sparsity: float = option(0.9, "Sparsity of the masked variant (random masks).", low=0, high=1, high_open=True)
    sparsities: Tuple[float, ...] = option((), "The masked variant's runs cycle through these sparsities (seeds x "
                                           "sparsity levels in one program, e.g. 40 runs = 5 seeds x 8 levels); "
                                           "overrides --sparsity.", low=0, high=1, high_open=True)
    steps: str = option("auto", "Steps per timed chunk; 'auto': about --chunk_s seconds at 50% of peak.")
    chunk_s: float = option(4.0, "Target seconds per chunk for --steps=auto.", low=0, low_open=True)
    repeats: int = option(3, "Timed chunks per variant (interleaved).", low=1)
    batch: int = option(100, "Batch of bcq / bc / bc_vae (td3bc and iql use 256).", low=1)
    data_size: int = option(0, "Synthetic transitions (0: the dataset's size, 1M).", low=0)
    compute_dtype: str = option("float32", "Compute dtype of the networks.", choices=("float32", "bfloat16"))
    unroll: int = option(1, "lax.scan unroll of make_train_chunk.", low=1)
    runs_loop: Tuple[str, ...] = option(("auto",), "make_train_chunk's runs_loop: auto (map on CPU, vmap on GPU/TPU), "
                                        "vmap or map; several are timed interleaved, rows of 'map' named dense-map / "
                                        "masked-map.", choices=("auto", "vmap", "map"))
    cpu_devices: str = option("1", "Split the CPU into this many single-threaded JAX devices, runs sharded over them "
                              "('auto': one per usable core; sparse_orl.trainer.devices).")
    peak_n: int = option(2048, "Size of the n^3 matmul timed for the peak.", low=1)
    quick: bool = option(False, "Smoke run: halfcheetah, bcq, runs 1,2, 3 steps, 2 repeats, 20k transitions, "
                         "1024^3 peak.")
    out: str = option("", "Also write the results to this JSON file.")


def parse_args(argv=None) -> Options:
    o = parse(Options, sys.argv[1:] if argv is None else argv)
    if o.steps != "auto" and not (o.steps.isdigit() and int(o.steps) > 0):
        sys.exit(f"error: --steps must be 'auto' or a positive integer, got {o.steps!r}")
    if o.quick:
        o = dataclasses.replace(o, envs=("halfcheetah",), algos=("bcq",), runs=(1, 2), steps="3", repeats=2,
                                data_size=o.data_size or 20_000, peak_n=1024)
    return o


def synthetic_data(env: str, size: int, seed: int = 0):
    """Transitions of the env's shapes and ``size`` rows, generated on device."""
    import jax
    import jax.numpy as jnp

    from sparse_orl.data.transitions import Transitions

    obs_dim, act_dim, max_action, full = C.ENVS[env]
    n = size or full
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    data = Transitions(
        obs=jax.random.normal(k[0], (n, obs_dim), jnp.float32),
        action=jax.random.uniform(k[1], (n, act_dim), jnp.float32, -max_action, max_action),
        reward=jax.random.normal(k[2], (n,), jnp.float32),
        next_obs=jax.random.normal(k[3], (n, obs_dim), jnp.float32),
        done=(jax.random.uniform(k[4], (n,)) < 0.01).astype(jnp.float32),
    )
    return jax.block_until_ready(data)


def make_bench_agent(env: str, algo_name: str, compute_dtype: str = "float32"):
    from sparse_orl.algos import make_algorithm, make_config

    algo, extra = C.ALGOS[algo_name]
    obs_dim, act_dim, max_action, _ = C.ENVS[env]
    if algo_name in C.OWN_SIZES:  # TD3+BC / IQL: the authors' 256-256
        cfg = make_config(algo, **extra, compute_dtype=compute_dtype)
    else:
        cfg = make_config(algo, **extra, actor_hidden=C.ACTOR_HIDDEN, critic_hidden=C.CRITIC_HIDDEN,
                          vae_hidden=C.VAE_HIDDEN, compute_dtype=compute_dtype)
    return make_algorithm(cfg, obs_dim, act_dim, max_action)


class Program:
    """One compiled train chunk and its run states (dense or masked)."""

    def __init__(self, agent, data, num_runs: int, steps: int, batch: int, variant: str, sparsity,
                 unroll: int = 1, runs_loop: str = "auto"):
        import jax

        from sparse_orl.config import PruneConfig
        from sparse_orl.trainer.sharding import replicated, runs_mesh
        from sparse_orl.trainer.runs import init_runs, make_train_chunk

        # several devices (--cpu_devices): runs sharded over them, the dataset on each
        mesh = runs_mesh() if jax.device_count() > 1 else None
        if mesh is not None:
            if num_runs % mesh.devices.size:
                raise SystemExit(f"--runs: {num_runs} runs do not split evenly over {mesh.devices.size} devices")
            data = jax.device_put(data, replicated(mesh))
        dense = variant.startswith("dense")
        prune = PruneConfig("none" if dense else "random")
        levels = [0.0] if dense else list(sparsity) if isinstance(sparsity, (list, tuple)) else [sparsity]
        sps = [levels[i % len(levels)] for i in range(num_runs)]  # run i: seed i // len(levels)
        seeds = [i // len(levels) for i in range(num_runs)]
        self.data = data
        t = time.perf_counter()
        self.runs = jax.block_until_ready(init_runs(agent, prune, data, seeds, sps, mesh=mesh))
        self.init_s = time.perf_counter() - t
        fn = make_train_chunk(agent, batch, steps, mesh, unroll, runs_loop)
        t = time.perf_counter()
        self.compiled = fn.lower(self.runs, data).compile()
        self.compile_s = time.perf_counter() - t  # ~0 for a variant whose program is already compiled
        # the first call may still allocate / page in: not timed
        self.runs, m = self.compiled(self.runs, data)
        jax.block_until_ready(m)
        self.first_nan = int(jax.device_get(m["nan_step"]).max())

    def time_chunk(self) -> float:
        import jax

        t = time.perf_counter()
        self.runs, m = self.compiled(self.runs, self.data)
        jax.block_until_ready((self.runs, m))
        return time.perf_counter() - t


def main(argv=None):
    args = parse_args(argv)
    devices = C.apply_cpu_devices(args.cpu_devices)  # before JAX starts

    warn = C.load_warning()
    if warn:
        print(warn)
    print(f"machine: {C.machine_info()}")
    print(f"jax: {C.jax_info()}" + (f"; CPU split into {devices} single-threaded devices" if devices > 1 else ""))
    peak = C.matmul_peak_gflops(args.peak_n)
    print(f"fp32 matmul peak ({args.peak_n}^3, jitted XLA dot): best {peak['gflops_best']:.1f} GFLOP/s, "
          f"median {peak['gflops_median']:.1f}")
    peak_bf16 = None
    if args.compute_dtype == "bfloat16":
        peak_bf16 = C.matmul_peak_gflops(args.peak_n, dtype="bfloat16")
        print(f"bf16 (f32 accumulate) matmul: best {peak_bf16['gflops_best']:.1f} GFLOP/s")

    rows = []
    from sparse_orl.trainer.runs import resolve_runs_loop

    loops = list(dict.fromkeys(resolve_runs_loop(x) for x in args.runs_loop))
    # variant name -> (dense|masked, runs_loop); "vmap" keeps the plain name
    variants = {v if lp == "vmap" else f"{v}-{lp}": (v, lp) for v in args.variants for lp in loops}
    sparsity = list(args.sparsities) if args.sparsities else args.sparsity
    for env in args.envs:
        data = synthetic_data(env, args.data_size)
        obs_dim, act_dim, _, _ = C.ENVS[env]
        for algo in args.algos:
            batch = C.batch_of(algo, args.batch)
            flops = C.step_flops(algo, obs_dim, act_dim, batch)
            agent = make_bench_agent(env, algo, args.compute_dtype)
            for n in args.runs:
                if args.steps == "auto":
                    steps = max(5, int(args.chunk_s * 0.5 * peak["gflops_best"] * 1e9 / (flops["total"] * n)))
                else:
                    steps = int(args.steps)
                progs = {}
                for v, (kind, lp) in variants.items():
                    progs[v] = Program(agent, data, n, steps, batch, kind, sparsity, args.unroll, lp)
                times = C.time_interleaved(progs, args.repeats)  # dense, masked, masked, dense, ...
                for v in variants:
                    t_med = C.median(times[v])
                    agg = n * steps / t_med
                    row = {
                        "env": env, "algo": algo, "runs": n, "variant": v, "steps": steps,
                        "compute_dtype": args.compute_dtype,
                        "compile_s": progs[v].compile_s,
                        "init_s": progs[v].init_s,
                        "chunk_s": times[v],
                        "agg_steps_s": agg,
                        "agg_steps_s_min": n * steps / max(times[v]),
                        "agg_steps_s_max": n * steps / min(times[v]),
                        "per_run_steps_s": steps / t_med,
                        "gflop_per_step": flops["total"] / 1e9,
                        "gflops": agg * flops["total"] / 1e9,
                        "pct_peak": 100 * agg * flops["total"] / 1e9 / peak["gflops_best"],
                        "nan": progs[v].first_nan >= 0,
                    }
                    rows.append(row)
                    print(f"  {env:11s} {algo:6s} runs={n:3d} {v:10s} steps={steps:4d} "
                          f"compile {row['compile_s']:.1f}s  agg {agg:8.1f} steps/s  "
                          f"({row['gflops']:.1f} GFLOP/s, {row['pct_peak']:.0f}% of peak)", flush=True)
                del progs
        del data

    # masked / dense ratio per configuration
    by = {(r["env"], r["algo"], r["runs"], r["variant"]): r for r in rows}
    for r in rows:
        d = by.get((r["env"], r["algo"], r["runs"], "dense"))
        r["vs_dense"] = r["agg_steps_s"] / d["agg_steps_s"] if d else None
    print()
    print(f"fp32 matmul peak: {peak['gflops_best']:.1f} GFLOP/s ({args.peak_n}^3)"
          + (f"; bf16: {peak_bf16['gflops_best']:.1f}" if peak_bf16 else "")
          + ("   [" + warn + "]" if warn else ""))
    print(C.table(rows, [
        ("env", "env", ""), ("algo", "algo", ""), ("runs", "runs", "d"), ("variant", "variant", ""),
        ("steps", "steps", "d"), ("compile_s", "compile s", ".1f"), ("agg_steps_s", "agg steps/s", ".1f"),
        ("agg_steps_s_min", "min", ".1f"), ("agg_steps_s_max", "max", ".1f"),
        ("per_run_steps_s", "per-run steps/s", ".2f"), ("gflop_per_step", "GFLOP/step", ".3f"),
        ("gflops", "GFLOP/s", ".1f"), ("pct_peak", "% peak", ".0f"), ("vs_dense", "masked/dense", ".3f"),
    ]))
    C.write_json(args.out, {
        "benchmark": "train_throughput", "args": dataclasses.asdict(args), "machine": C.machine_info(), "jax": C.jax_info(),
        "load_warning": warn, "peak_fp32": peak, "peak_bf16": peak_bf16,
        "flops_per_step": {f"{e}/{a}": C.step_flops(a, *C.ENVS[e][:2], batch=C.batch_of(a, args.batch))
                           for e in args.envs for a in args.algos},
        "rows": rows,
    })
    return rows


if __name__ == "__main__":
    main()
