"""FLOPs and bytes of one train step, from XLA's cost analysis of a vmapped step (no scan).

The scan of ``make_train_chunk`` hides its body from the cost analysis, so this
compiles one ``jit(vmap(agent.train_step))`` over ``--runs`` runs and divides by
the number of runs. Bytes accessed over FLOPs says whether a step can be
arithmetic-bound on a device: BCQ does ~3.1 GFLOP and moves ~214 MB per run
(14.5 FLOP/byte), so on a GPU it is memory-bound (BUILD_NOTES, "GPU").
The analysis is the CPU backend's by default; fusion differs a little per backend.

    python bench/step_cost.py --algos bcq,bc,bc_vae --runs 1,40
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as C  # noqa: E402


def step_cost(env: str, algo: str, runs: int, compute_dtype: str = "float32", batch: int = 100):
    """{"flops", "bytes", "params"} per run of one vmapped train step (XLA cost analysis)."""
    import jax

    from sparse_orl.config import PruneConfig
    from sparse_orl.data.transitions import sample_batch
    from sparse_orl.trainer.runs import init_runs
    from train_throughput import make_bench_agent, synthetic_data

    data = synthetic_data(env, 5000)
    agent = make_bench_agent(env, algo, compute_dtype)
    state = init_runs(agent, PruneConfig("none"), data, list(range(runs)), [0.0] * runs).agent
    batches = jax.vmap(lambda k: sample_batch(data, k, batch))(jax.random.split(jax.random.PRNGKey(0), runs))
    keys = jax.random.split(jax.random.PRNGKey(1), runs)
    compiled = jax.jit(jax.vmap(agent.train_step)).lower(state, batches, keys).compile()
    ca = compiled.cost_analysis()
    ca = ca[0] if isinstance(ca, (list, tuple)) else ca
    params = sum(x.size for x in jax.tree_util.tree_leaves(state.params)) // runs
    return {"flops": ca["flops"] / runs, "bytes": ca["bytes accessed"] / runs, "params": params}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algos", default="bcq,bc,bc_vae")
    p.add_argument("--envs", default="halfcheetah")
    p.add_argument("--runs", default="1,40")
    p.add_argument("--compute_dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    rows = []
    for env in args.envs.split(","):
        for algo in args.algos.split(","):
            hand = C.step_flops(algo, *C.ENVS[env][:2])["total"]
            for n in [int(x) for x in args.runs.split(",")]:
                c = step_cost(env, algo, n, args.compute_dtype)
                rows.append({"env": env, "algo": algo, "runs": n, "gflop_xla": c["flops"] / 1e9,
                             "gflop_hand": hand / 1e9, "mb": c["bytes"] / 1e6,
                             "flop_per_byte": c["flops"] / c["bytes"], "mparams": c["params"] / 1e6})
    print(C.table(rows, [("env", "env", ""), ("algo", "algo", ""), ("runs", "runs", "d"),
                         ("gflop_xla", "GFLOP/run (XLA)", ".2f"), ("gflop_hand", "GFLOP/run (hand)", ".2f"),
                         ("mb", "MB/run", ".1f"), ("flop_per_byte", "FLOP/byte", ".1f"),
                         ("mparams", "M params/run", ".2f")]))
    C.write_json(args.out, {"benchmark": "step_cost", "args": vars(args), "jax": C.jax_info(), "rows": rows})
    return rows


if __name__ == "__main__":
    main()
