"""FLOPs and bytes of one train step, from XLA's cost analysis of a vmapped step (no scan).

The scan of ``make_train_chunk`` hides its body from the cost analysis, so this
compiles one ``jit(vmap(agent.train_step))`` over ``--runs`` runs and divides by
the number of runs. Bytes accessed over FLOPs says whether a step can be
arithmetic-bound on a device: BCQ does ~3.1 GFLOP and moves ~214 MB per run
(14.5 FLOP/byte), so on a GPU it is memory-bound (docs/results/speed.md).
The analysis is the CPU backend's by default; fusion differs a little per backend.

    python bench/step_cost.py --algos bcq,bc,bc_vae --runs 1,40
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import _common as C  # noqa: E402
from bench._options import parse  # noqa: E402
from sparse_orl.fields import option  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Options:
    algos: Tuple[str, ...] = option(("bcq", "bc", "bc_vae"), "Algorithms.", choices=tuple(C.ALGOS))
    envs: Tuple[str, ...] = option(("halfcheetah",), "Environment shapes.", choices=tuple(C.ENVS))
    runs: Tuple[int, ...] = option((1, 40), "Numbers of runs of the vmapped step (the cost is per run).", low=1)
    compute_dtype: str = option("float32", "Compute dtype of the networks.", choices=("float32", "bfloat16"))
    out: str = option("", "Also write the results to this JSON file.")


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
    args = parse(Options, sys.argv[1:] if argv is None else argv)
    rows = []
    for env in args.envs:
        for algo in args.algos:
            hand = C.step_flops(algo, *C.ENVS[env][:2])["total"]
            for n in args.runs:
                c = step_cost(env, algo, n, args.compute_dtype)
                rows.append({"env": env, "algo": algo, "runs": n, "gflop_xla": c["flops"] / 1e9,
                             "gflop_hand": hand / 1e9, "mb": c["bytes"] / 1e6,
                             "flop_per_byte": c["flops"] / c["bytes"], "mparams": c["params"] / 1e6})
    print(C.table(rows, [("env", "env", ""), ("algo", "algo", ""), ("runs", "runs", "d"),
                         ("gflop_xla", "GFLOP/run (XLA)", ".2f"), ("gflop_hand", "GFLOP/run (hand)", ".2f"),
                         ("mb", "MB/run", ".1f"), ("flop_per_byte", "FLOP/byte", ".1f"),
                         ("mparams", "M params/run", ".2f")]))
    C.write_json(args.out, {"benchmark": "step_cost", "args": dataclasses.asdict(args), "jax": C.jax_info(), "rows": rows})
    return rows


if __name__ == "__main__":
    main()
