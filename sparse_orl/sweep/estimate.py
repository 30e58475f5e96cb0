"""Rough time and device memory of sweep programs, from a short measurement (``launch.sweep --dry_run``)."""
from __future__ import annotations

import math
import time
from typing import Dict, Optional, Sequence, Tuple

from sparse_orl.report.results import Log
from sparse_orl.sweep.plan import Program
import jax
import numpy as np
from sparse_orl.algos import make_algorithm
from sparse_orl.config import PruneConfig
from sparse_orl.data import dataset_on_disk, load_dataset, to_device
from sparse_orl.trainer.runs import init_runs, make_train_chunk
from sparse_orl.job import evaluation
from sparse_orl.data import guess_env_id
from sparse_orl.data.transitions import DatasetInfo, Transitions


def estimate_programs(programs: Sequence[Program], log: Log = print, min_seconds: float = 1.0) -> Dict[str, Dict]:
    """Rough time and memory per program from a short measurement.

    For each distinct (agent config, dataset, batch size): load the dataset,
    build the agent, compile a 1-run train chunk (dense, zero-filled state), time it for
    ``min_seconds``, read XLA's memory analysis, and time the environment's
    step. Then per program, with R runs on D devices::

        train time ~ ceil(R / D) * steps / (steps/s of one run)   (linear in runs: right on a
                                                                    CPU, pessimistic on a GPU)
        eval time <= evals * R * episodes * episode length * env step time
        device memory ~ dataset + R * (run state + XLA temporaries of one run)
    """


    cache: Dict[Tuple, Dict] = {}
    out: Dict[str, Dict] = {}
    devices = jax.devices()
    missing = sorted({p.config.dataset for p in programs if not dataset_on_disk(p.config.dataset)})
    if missing:
        log(f"datasets not on disk: {', '.join(missing)} (estimates below use their environments' spaces "
            f"and assume {MISSING_ROWS:,} transitions; training downloads them when online)")
    for p in programs:
        cfg = p.config
        key = (cfg.agent_config, cfg.dataset, cfg.batch_size)
        if key not in cache:
            log(f"timing {cfg.agent.label} on {cfg.dataset} (batch {cfg.batch_size}) ...")
            cache[key] = _measure(cfg, cfg.dataset in missing, min_seconds, log)
        c = cache[key]
        r = p.num_runs
        train_s = math.ceil(r / len(devices)) * cfg.steps / c["sps"]
        n_evals = math.ceil(cfg.steps / cfg.eval_every) if cfg.eval_episodes else 0
        ep_len = cfg.eval_max_episode_steps or 1000
        eval_s = (n_evals * r * cfg.eval_episodes * ep_len * c["env_step"]) if c["env_step"] else 0.0
        per_run = c["state_bytes"] + (c["temp_bytes"] if c["temp_bytes"] is not None else c["state_bytes"])
        out[p.name] = dict(c, train_s=train_s, eval_s=eval_s, time_s=c["compile_s"] + train_s + eval_s,
                           memory_bytes=c["data_bytes"] + r * per_run)
    if out:
        if missing:
            out["_missing"] = missing
        out["_note"] = {"devices": f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform})"}
    return out


def _measure(cfg, missing: bool, min_seconds: float, log: Log) -> Dict:
    """Steps/s of one run, compile time, bytes of the data, one run's state and XLA's temporaries, and
    the environment's step time, for one (agent config, dataset, batch size)."""
    if missing:
        transitions, info = _stand_in(cfg.dataset, cfg.env)
        agent = make_algorithm(cfg.agent_config, info.obs_dim, info.act_dim, info.max_action)
    else:
        transitions, info = load_dataset(cfg.dataset)
        agent = make_algorithm(cfg.agent_config, info.obs_dim, info.act_dim, info.max_action)
        transitions = agent.preprocess(transitions, info)
    data = jax.device_put(to_device(transitions))
    data_bytes = sum(np.asarray(x).nbytes for x in jax.tree_util.tree_leaves(transitions))
    if missing:
        data_bytes = data_bytes * MISSING_ROWS // len(np.asarray(transitions.reward))
    # one dense run: the same work per step as a pruned run (masks are data), without
    # compiling the pruning at init
    state = init_runs(agent, PruneConfig("dense"), data, [0], [0.0])
    state_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(state))
    n = 50
    chunk = make_train_chunk(agent, cfg.batch_size, n)
    temp, t0 = None, time.time()
    try:
        mem = chunk.lower(state, data).compile().memory_analysis()
        temp = int(mem.temp_size_in_bytes) if mem is not None else None
    except Exception:  # noqa: BLE001 - not every backend reports memory
        temp = None
    state, m = chunk(state, data)
    jax.block_until_ready(m)
    compile_s = time.time() - t0
    steps, t0 = 0, time.time()
    while time.time() - t0 < min_seconds or steps < 2 * n:
        state, m = chunk(state, data)
        jax.block_until_ready(m)
        steps += n
    sps = steps / (time.time() - t0)
    env_step = _env_step_seconds(info.env_id, log) if cfg.eval_episodes and info.env_id else None
    return dict(sps=sps, compile_s=compile_s, data_bytes=data_bytes, state_bytes=state_bytes, temp_bytes=temp,
                env_step=env_step)


def _env_step_seconds(env_id: str, log: Log) -> Optional[float]:
    """Seconds of one environment step with random actions (None if the env cannot be built)."""
    try:
        env = evaluation.make_env(env_id)
        env.reset(seed=0)
        env.action_space.seed(0)
        t0, k = time.time(), 0
        while k < 200:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            k += 1
            if term or trunc:
                env.reset()
        env.close()
        return (time.time() - t0) / k
    except Exception as e:  # noqa: BLE001
        log(f"  (could not time env {env_id}: {e})")
        return None


MISSING_ROWS = 1_000_000  # what a dry run assumes for a dataset not on disk (D4RL's MuJoCo size)


def _stand_in(dataset: str, env: Optional[str]):
    """Random transitions shaped like ``dataset``'s environment, for timing a dataset not on disk."""


    env_id = env or guess_env_id(dataset)
    if env_id is None:
        raise ValueError(f"dataset {dataset!r} is not on disk and its environment cannot be told from its id: "
                         "download it first, or give --env")
    obs_dim, act_dim, max_action = evaluation.env_spaces(env_id)
    n, rng = 10_000, np.random.default_rng(0)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    t = Transitions(obs=obs, action=rng.uniform(-max_action, max_action, (n, act_dim)).astype(np.float32),
                    reward=rng.normal(size=n).astype(np.float32), next_obs=obs, done=np.zeros(n, np.float32))
    info = DatasetInfo(dataset_id=dataset, env_id=env_id, obs_dim=obs_dim, act_dim=act_dim, max_action=max_action,
                       ref_min_score=None, ref_max_score=None, score_source="none", sha256="", num_episodes=10, num_transitions=n)
    return t, info
