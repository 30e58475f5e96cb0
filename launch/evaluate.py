"""Evaluate the final params of a finished ``launch.train`` workdir again.

    python -m launch.evaluate --workdir=runs/bc_vae_snip --episodes=10

Writes ``evaluate.json`` in the workdir and prints one line per run.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from launch import common
from sparse_orl import evaluation
from sparse_orl.algos import make_agent
from sparse_orl.checkpoint import load_final
from sparse_orl.config import AgentConfig
from sparse_orl.data import normalized_score
from sparse_orl.io_utils import atomic_write_json, read_json
from sparse_orl.training import make_act_fn

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A finished launch.train workdir.")
flags.DEFINE_integer("episodes", 10, "Episodes per run.")
flags.DEFINE_integer("seed", 1_000_003, "Seed of the evaluation episodes (different from training's).")
flags.DEFINE_integer("max_episode_steps", None, "Cap episode length (default: the env's limit).")


def evaluate_workdir(workdir: str, episodes: int, seed: int, max_episode_steps=None):
    """Returns ``{"env_id", "score_reference", "runs": [{pruner, seed, sparsity, returns, return, normalized_score}]}``."""
    agent_dict, runs = load_final(workdir)
    summary_path = os.path.join(workdir, "summary.json")
    ref = read_json(summary_path, "summary")["score_reference"] if os.path.exists(summary_path) else None
    fields = {k: agent_dict[k] for k in AgentConfig.__dataclass_fields__ if k in agent_dict}
    for k in ("actor_hidden", "critic_hidden", "vae_hidden"):
        fields[k] = tuple(fields[k])
    agent = make_agent(AgentConfig(**fields), agent_dict["obs_dim"], agent_dict["act_dim"], agent_dict["max_action"])
    env_id = agent_dict["env_id"]
    stack = lambda key: jax.tree_util.tree_map(lambda *xs: jnp.asarray(np.stack(xs)), *[r[key] for r in runs])
    params, mean, std = stack("params"), stack("obs_mean"), stack("obs_std")
    act = make_act_fn(agent)
    key = [jax.random.PRNGKey(seed)]

    def policy(obs):
        key[0], sub = jax.random.split(key[0])
        return np.asarray(act(params, mean, std, jnp.asarray(obs), jax.random.split(sub, len(runs))))

    returns = evaluation.evaluate_policies(policy, env_id, len(runs), episodes, seed=seed,
                                           max_episode_steps=max_episode_steps)
    out = []
    for r, rets in zip(runs, returns):
        mean_ret = float(np.mean(rets))
        norm = (float(normalized_score(mean_ret, ref["min"], ref["max"]))
                if ref and ref.get("min") is not None else None)
        out.append({"pruner": r.get("pruner"), "seed": r["seed"], "sparsity": r["sparsity"],
                    "returns": [float(x) for x in rets], "return": mean_ret, "normalized_score": norm})
    return {"env_id": env_id, "score_reference": ref, "episodes": episodes, "seed": seed, "runs": out}


def main(argv):
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    try:
        if not FLAGS.workdir:
            raise ValueError("--workdir is required")
        result = evaluate_workdir(FLAGS.workdir, FLAGS.episodes, FLAGS.seed, FLAGS.max_episode_steps)
    except (ValueError, FileNotFoundError) as e:
        common.fail(str(e))
    atomic_write_json(os.path.join(FLAGS.workdir, "evaluate.json"), result)
    for r in result["runs"]:
        norm = "n/a" if r["normalized_score"] is None else f"{r['normalized_score']:.1f}"
        print(f"{r['pruner']:>10s} seed {r['seed']:>3d} sparsity {r['sparsity']:.3f}: "
              f"return {r['return']:.1f} normalized {norm}")


if __name__ == "__main__":
    app.run(main)
