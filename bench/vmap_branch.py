"""TD3+BC's policy delay under vmap: a real branch (the shared step) vs a select of both branches.

``jax.vmap`` turns a ``lax.cond`` whose predicate is batched into a ``select`` that
computes both branches. TD3+BC updates the actor on every ``policy_freq``-th step; with
the runs vmapped (``runs_loop=vmap``, what GPUs/TPUs use) and each run's own step as the
predicate, the actor update and Polyak targets ran on every step and were thrown away
on half of them. The training loop now hands the agent the step its runs share
(unbatched), so the cond stays a branch. This bench times both, interleaved, in one run:
"branch" is the library's program; "select" is the same agent with the step made to
vary per run (the old behaviour), so vmap has to select.

    python bench/vmap_branch.py --runs=5 --runs_loop=vmap
"""
from __future__ import annotations

import dataclasses
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import _common as C  # noqa: E402
from bench._options import parse  # noqa: E402
from sparse_orl.fields import option  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Options:
    env: str = option("halfcheetah", "Environment shapes.", choices=tuple(C.ENVS))
    runs: int = option(5, "Dense TD3+BC runs in one program.", low=1)
    steps: int = option(200, "Steps per timed chunk.", low=1)
    repeats: int = option(4, "Timed chunks per variant (interleaved).", low=1)
    runs_loop: str = option("vmap", "make_train_chunk's runs_loop.", choices=("map", "vmap"))
    out: str = option("", "Also write the results to this JSON file.")


def select_agent(agent):
    """``agent`` whose train step sees a per-run (batched) step, as before the fix."""
    import jax.numpy as jnp

    base = type(agent)

    class PerRunStep(base):
        def train_step(self, state, batch, key):
            # 0 that depends on the run's own state: batched under vmap, so the step is too
            zero = jnp.zeros((), state.step.dtype) * (state.obs_std[0] > jnp.inf).astype(state.step.dtype)
            return base.train_step(self, state.replace(step=state.step + zero), batch, key)

    return PerRunStep(**{f.name: getattr(agent, f.name) for f in dataclasses.fields(agent)})


def main(argv=None):
    args = parse(Options, sys.argv[1:] if argv is None else argv)

    from train_throughput import Program, make_bench_agent, synthetic_data

    warn = C.load_warning()
    if warn:
        print(warn)
    data = synthetic_data(args.env, 0)
    base = make_bench_agent(args.env, "td3bc")
    progs = {name: Program(agent, data, args.runs, args.steps, C.batch_of("td3bc", 256), "dense", 0.0, 1,
                           args.runs_loop)
             for name, agent in (("branch", base), ("select", select_agent(base)))}
    times = C.time_interleaved(progs, args.repeats)
    rows = [{"variant": k, "runs": args.runs, "runs_loop": args.runs_loop,
             "agg_steps_s": args.runs * args.steps / C.median(times[k]), "chunk_s": times[k]} for k in progs]
    ratio = rows[0]["agg_steps_s"] / rows[1]["agg_steps_s"]
    print(f"td3bc {args.runs_loop} x{args.runs}: branch {rows[0]['agg_steps_s']:.1f}, select "
          f"{rows[1]['agg_steps_s']:.1f} aggregate steps/s ({ratio:.2f}x)" + (f"   [{warn}]" if warn else ""),
          flush=True)
    C.write_json(args.out, {"benchmark": "vmap_branch", "args": dataclasses.asdict(args), "machine": C.machine_info(),
                            "jax": C.jax_info(), "load_warning": warn, "rows": rows, "branch_over_select": ratio})


if __name__ == "__main__":
    main()
