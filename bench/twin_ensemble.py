"""Twin critics as one vmapped ensemble vs two separate Q-networks: TD3+BC / IQL / BCQ steps/s, interleaved.

The question: is Q1(s, a), Q2(s, a) faster as one batched matmul (the two
critics' params stacked on a leading axis, the critic applied under ``vmap``) than as
two matmuls? This builds both variants of the same algorithm (the ensemble one
overrides only where the twin critic is evaluated: the critic loss, and the TD target
(TD3+BC, and BCQ's over its repeated next states) or min(Q1, Q2) (IQL)), compiles each as a ``make_train_chunk`` program of
``--runs`` dense runs, and times them interleaved. The param layout is unchanged, so
the ensemble variant stacks the two critics' params inside every step.

    python bench/twin_ensemble.py --algos=td3bc,iql,bcq --runs=5
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
    algos: Tuple[str, ...] = option(("td3bc", "iql"), "Algorithms.", choices=("td3bc", "iql", "bcq", "bc"))
    env: str = option("halfcheetah", "Environment shapes.", choices=tuple(C.ENVS))
    runs: int = option(5, "Dense runs in one program.", low=1)
    steps: int = option(200, "Steps per timed chunk.", low=1)
    repeats: int = option(4, "Timed chunks per variant (interleaved).", low=1)
    runs_loop: str = option("auto", "make_train_chunk's runs_loop.", choices=("auto", "map", "vmap"))
    out: str = option("", "Also write the results to this JSON file.")


def twin_q(critic, twin_params, obs, action):
    """(Q1, Q2)(s, a) with Q1 and Q2 applied as one vmapped ensemble."""
    import jax
    import jax.numpy as jnp

    stacked = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), twin_params["q1"], twin_params["q2"])
    q = jax.vmap(lambda p: critic.apply({"params": p}, obs, action))(stacked)
    return q[0], q[1]


def ensemble_agent(agent):
    """``agent`` (TD3BC or IQL) with its twin critic evaluated by :func:`twin_q`."""
    import jax
    import jax.numpy as jnp

    from sparse_orl.algos import losses
    from sparse_orl.algos.bcq import BCQ
    from sparse_orl.algos.iql import IQL
    from sparse_orl.algos.td3bc import TD3BC

    def critic_loss(critic, params, batch):
        q1, q2 = twin_q(critic, params, batch.obs, batch.action)
        return jnp.mean(jnp.square(q1 - batch.target)) + jnp.mean(jnp.square(q2 - batch.target))

    if isinstance(agent, TD3BC):
        class Ensemble(TD3BC):
            def critic_target(self, target_params, batch, key):
                c, m = self.config, self.max_action
                a_next = self.actor.apply({"params": target_params["actor"]}, batch.next_obs)
                eps = jnp.clip(c.policy_noise * m * jax.random.normal(key, a_next.shape),
                               -c.noise_clip * m, c.noise_clip * m)
                q1, q2 = twin_q(self.critic, target_params["critic"], batch.next_obs, jnp.clip(a_next + eps, -m, m))
                return jax.lax.stop_gradient(batch.reward + c.discount * (1.0 - batch.done) * jnp.minimum(q1, q2))
    elif isinstance(agent, IQL):
        class Ensemble(IQL):
            def q_min(self, critic_params, obs, action):
                return jnp.minimum(*twin_q(self.critic, critic_params, obs, action))
    elif isinstance(agent, BCQ):
        class Ensemble(BCQ):
            def critic_target_values(self, target_params, vae_params, batch, z):
                c, n = self.config, z.shape[1]
                s_rep = jnp.broadcast_to(batch.next_obs[:, None, :], (batch.next_obs.shape[0], n, self.obs_dim))
                a_next = self.next_actions(target_params.get("actor"), vae_params, s_rep, z)
                q = losses.soft_clipped_double_q(*twin_q(self.critic, target_params["critic"], s_rep, a_next), c.lmbda)
                return jax.lax.stop_gradient(losses.td_target(batch.reward, batch.done, q, c.discount))
    else:
        raise SystemExit(f"no ensemble variant for {type(agent).__name__}")
    fields = {f.name: getattr(agent, f.name) for f in dataclasses.fields(agent)}
    return Ensemble(**fields), critic_loss


def main(argv=None):
    args = parse(Options, sys.argv[1:] if argv is None else argv)

    from sparse_orl.algos import losses
    from train_throughput import Program, make_bench_agent, synthetic_data

    warn = C.load_warning()
    if warn:
        print(warn)
    data = synthetic_data(args.env, 0)
    rows = []
    for algo in args.algos:
        base = make_bench_agent(args.env, algo)
        ens, ens_loss = ensemble_agent(base)
        progs, plain_loss = {}, losses.critic_loss
        for name, agent in (("two networks", base), ("ensemble", ens)):
            # the critic loss is a module function: swapped only while the program is traced
            losses.critic_loss = plain_loss if name == "two networks" else ens_loss
            try:
                progs[name] = Program(agent, data, args.runs, args.steps, C.batch_of(algo, 100), "dense", 0.0,
                                      1, args.runs_loop)
            finally:
                losses.critic_loss = plain_loss
        times = C.time_interleaved(progs, args.repeats)
        for k in progs:
            rate = args.runs * args.steps / C.median(times[k])
            rows.append({"algo": algo, "env": args.env, "variant": k, "runs": args.runs, "agg_steps_s": rate,
                         "chunk_s": times[k]})
        ratio = rows[-1]["agg_steps_s"] / rows[-2]["agg_steps_s"]
        rows[-1]["ensemble_over_two"] = ratio
        print(f"{algo}: two networks {rows[-2]['agg_steps_s']:.1f}, ensemble {rows[-1]['agg_steps_s']:.1f} "
              f"aggregate steps/s ({ratio:.2f}x)" + (f"   [{warn}]" if warn else ""), flush=True)
    C.write_json(args.out, {"benchmark": "twin_ensemble", "args": dataclasses.asdict(args), "machine": C.machine_info(),
                            "jax": C.jax_info(), "load_warning": warn, "rows": rows})


if __name__ == "__main__":
    main()
