"""One training job: dataset -> masks at init -> vmapped sparse training -> evals -> files.

``run_experiment(config)`` trains every (seed, sparsity) run of ``config`` in
one compiled program, evaluates them together, checkpoints, and resumes from
the newest checkpoint when re-run with the same config on the same workdir.

Files in ``workdir``: ``config.json``, ``summary.json``, ``metrics.jsonl``,
``checkpoints/`` (orbax), ``final/params.npz`` + ``final/runs.json``.

Several processes (``jax.distributed.initialize()``, ``--distributed`` in ``launch/``):
every process runs ``run_experiment`` with the same config on the same (shared)
workdir. Each builds the same initial run states from the seeds and fills its own
shards of the global mesh; training is one program over all devices. Each process
evaluates the runs its own devices hold (their environments run on its own CPU), and
the returns are gathered, so every process holds every run's results (and the same
checkpoint metadata). Only process 0 writes ``config.json``, ``summary.json``,
``metrics.jsonl``, ``final/`` and logs; orbax checkpoints are saved and restored by
every process (each writes its own shards, process 0 the metadata), so the workdir
must be on a file system all processes share. Processes must have the same number
of devices.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
import time
from typing import Callable, Dict, List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_orl import pruning
from sparse_orl.algos import make_agent
from sparse_orl.checkpoint import Checkpointer, abstract_like, save_final
from sparse_orl.config import AgentConfig, PruneConfig, canonical_prune_dict
from sparse_orl.data import check_env_spaces, d4rl_reference, load_dataset, normalized_score, to_device
from sparse_orl.io_utils import append_jsonl, atomic_write_json, read_json, read_jsonl, write_jsonl
from sparse_orl.training import (init_runs, local_runs, make_act_fn, make_train_chunk, padded_num_runs,
                                 replicated, runs_mesh, runs_sharding, take_runs, to_global, to_host)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything one ``launch.train`` job needs. Built from flags in ``launch/`` only."""

    dataset: str
    workdir: str
    agent: AgentConfig = AgentConfig()
    prunes: Tuple[PruneConfig, ...] = (PruneConfig("none"),)  # pruning methods trained side by side
    seeds: Tuple[int, ...] = (0,)
    sparsities: Tuple[float, ...] = (0.0,)
    steps: int = 1_000_000
    batch_size: int = 100
    eval_every: int = 5000
    eval_episodes: int = 10
    checkpoint_every: int = 10000
    env: Optional[str] = None
    eval_max_episode_steps: Optional[int] = None  # None: the env's own limit (1000 for MuJoCo)

    def validate(self) -> None:
        if not self.seeds:
            raise ValueError("--seeds is empty: give at least one seed, e.g. --seeds=0,1,2")
        if len(set(self.seeds)) != len(self.seeds) or any(int(s) < 0 for s in self.seeds):
            raise ValueError(f"--seeds must be distinct non-negative integers, got {list(self.seeds)}")
        if not self.sparsities:
            raise ValueError("--sparsity is empty: give at least one level in [0, 1)")
        for s in self.sparsities:
            pruning.check_sparsity(s, "--sparsity")
        if len(set(self.sparsities)) != len(self.sparsities):
            raise ValueError(f"--sparsity has repeated levels: {list(self.sparsities)}")
        if not self.prunes:
            raise ValueError("--pruner is empty: give at least one pruning method")
        labels = [p.label for p in self.prunes]
        if len(set(labels)) != len(labels):
            raise ValueError(f"--pruner has repeated methods: {labels}")
        for name in ("steps", "batch_size", "eval_every", "checkpoint_every"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}")
        if self.eval_episodes < 0:
            raise ValueError(f"--eval_episodes must be >= 0, got {self.eval_episodes}")

    @property
    def runs(self) -> List[Tuple[int, int, float]]:
        """(method index, seed, sparsity) of every run. Dense ("none") runs at sparsity 0 only."""
        out = []
        for i, prune in enumerate(self.prunes):
            levels = (0.0,) if prune.pruner == "none" else self.sparsities
            out += [(i, int(seed), float(sp)) for seed in self.seeds for sp in levels]
        return out

    def to_dict(self) -> Dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def _provenance(info) -> Dict:
    def version(mod):
        try:
            return __import__(mod).__version__
        except Exception:  # noqa: BLE001
            return None

    try:
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        commit = out.stdout.strip() if out.returncode == 0 and len(out.stdout.strip()) == 40 else None
    except Exception:  # noqa: BLE001
        commit = None
    return {
        "git_commit": commit,
        "versions": {m: version(m) for m in ("jax", "jaxlib", "flax", "optax", "numpy", "gymnasium",
                                              "mujoco", "minari", "orbax.checkpoint")}
        | {"python": platform.python_version()},
        "dataset_id": info.dataset_id,
        "dataset_sha256": info.sha256,
        "devices": [str(d) for d in jax.devices()],
    } | ({"processes": jax.process_count()} if jax.process_count() > 1 else {})


def comparable_config(d: Dict) -> Dict:
    """A config dict as compared on resume: the workdir path itself is left out (a moved
    workdir still resumes) and pruning options are in their canonical form, remedy options
    at their defaults dropped (:func:`canonical_prune_dict`), so a config written before a
    library upgrade added an option still matches."""
    d = {k: v for k, v in d.items() if k != "workdir"}
    if "prunes" in d:
        d["prunes"] = [canonical_prune_dict(p) for p in d["prunes"]]
    return d


def check_workdir(workdir: str, config: ExperimentConfig, write: bool = True) -> None:
    """Write ``config.json`` (if ``write``), or refuse if the workdir holds a different config."""
    path = os.path.join(workdir, "config.json")
    new = config.to_dict()
    if os.path.exists(path):
        old = comparable_config(read_json(path, "workdir config"))
        if old != comparable_config(new):
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            details = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
            raise ValueError(
                f"--workdir={workdir} holds a different experiment ({details}). "
                "Use a new --workdir, or re-run the original command to resume."
            )
    elif write:
        atomic_write_json(path, new)


def _score_reference(info, env_id: str) -> Dict:
    if info.ref_min_score is not None and info.ref_max_score is not None:
        return {"min": info.ref_min_score, "max": info.ref_max_score, "source": info.score_source}
    ref = d4rl_reference(env_id)
    if ref is not None:
        return {"min": ref[0], "max": ref[1], "source": "D4RL constants"}
    return {"min": None, "max": None, "source": "none"}


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def run_experiment(config: ExperimentConfig, log: Callable[[str], None] = print,
                   stop_at: Optional[int] = None) -> Dict:
    """Train, evaluate, checkpoint and summarize every run of ``config``; returns the summary.

    With several processes every process calls this with the same config and gets the
    same summary; only process 0 writes files (see the module docstring).

    ``stop_at`` ends the process's work abruptly once that step is reached, without
    a final checkpoint, exactly as a kill would (tests use it to check resuming).
    """
    from sparse_orl import evaluation  # gymnasium import kept off the library's import path

    config.validate()
    multi = jax.process_count() > 1
    main = jax.process_index() == 0  # the process that writes files and logs
    if not main:
        log = lambda _m: None  # noqa: E731
    workdir = config.workdir
    os.makedirs(workdir, exist_ok=True)
    check_workdir(workdir, config, write=main)
    summary_path = os.path.join(workdir, "summary.json")
    if os.path.exists(summary_path):
        done = read_json(summary_path, "summary")
        if done.get("complete"):
            log(f"{workdir}: already complete ({config.steps} steps); nothing to do")
            return done

    transitions, info = load_dataset(config.dataset, env_id=config.env)
    env_id = config.env or info.env_id
    if env_id is None:
        raise ValueError(f"dataset {config.dataset!r} does not name its environment; pass --env")
    if config.eval_episodes:
        env = evaluation.make_env(env_id)
        try:
            check_env_spaces(info, env)
        finally:
            env.close()
    obs_mean = np.zeros(info.obs_dim, np.float32)
    obs_std = np.ones(info.obs_dim, np.float32)
    if config.agent.normalize_obs:
        obs_mean = np.asarray(transitions.obs, np.float64).mean(0).astype(np.float32)
        obs_std = (np.asarray(transitions.obs, np.float64).std(0) + 1e-3).astype(np.float32)

    agent = make_agent(config.agent, info.obs_dim, info.act_dim, info.max_action)
    mesh = runs_mesh()
    runs = config.runs
    num_runs = len(runs)
    r_pad = padded_num_runs(num_runs, mesh)
    data = to_global(to_device(transitions), replicated(mesh))
    labels = [config.prunes[m].label for m, _, _ in runs]

    t0 = time.time()
    groups = []
    for m, prune in enumerate(config.prunes):
        members = [(s, p) for mm, s, p in runs if mm == m]
        groups.append(init_runs(agent, prune, data, [s for s, _ in members], [p for _, p in members],
                                obs_mean, obs_std))
    # pad with copies of the last run so the runs axis splits evenly over the devices
    groups.append(jax.tree_util.tree_map(lambda x: jnp.repeat(x[-1:], r_pad - num_runs, 0), groups[-1]))
    run_states = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, 0), *groups)
    run_states = to_global(run_states, runs_sharding(mesh))
    jax.block_until_ready(run_states)
    log(f"initialized {num_runs} runs ({', '.join(sorted(set(labels)))}) in {time.time() - t0:.1f}s")

    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    start_step, evals = 0, [[] for _ in range(num_runs)]
    restored = ckpt.restore_latest(abstract_like(run_states))
    if restored is not None:
        start_step, run_states, meta = restored
        evals = meta["evals"]
        log(f"resumed from checkpoint at step {start_step}")
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    if main:
        # rows written after the last checkpoint would be written again: keep only those before it
        write_jsonl(metrics_path, [r for r in read_jsonl(metrics_path) if r.get("step", 0) <= start_step])

    host_masks = to_host(run_states.agent.masks)
    mask_reports = [pruning.masks_report(take_runs(host_masks, i), warn=restored is None and main,
                                         context=f"{labels[i]}, seed {s}, sparsity {p}")
                    for i, (_, s, p) in enumerate(runs)]
    score_ref = _score_reference(info, env_id)
    provenance = _provenance(info)

    def write_summary(complete: bool, nan_steps) -> Dict:
        out_runs = []
        for i, (_, seed, sp) in enumerate(runs):
            diverged = int(nan_steps[i]) >= 0
            out_runs.append({
                "seed": seed, "sparsity": sp, "pruner": labels[i],
                "status": "diverged" if diverged else "ok",
                "nan_step": int(nan_steps[i]) if diverged else None,
                "masks": mask_reports[i],
                "evals": [] if diverged else evals[i],
            })
        summary = {"config": config.to_dict(), "provenance": provenance, "score_reference": score_ref,
                   "env_id": env_id, "complete": complete, "runs": out_runs}
        if main:
            atomic_write_json(summary_path, summary)
        return summary

    chunk_len = math.gcd(math.gcd(config.eval_every, config.checkpoint_every), config.steps)
    train_chunk = make_train_chunk(agent, config.batch_size, chunk_len, mesh)
    act_fn = make_act_fn(agent)
    eval_key = jax.random.PRNGKey(10_007)

    step = start_step
    nan_steps = np.asarray(to_host(run_states.nan_step))
    t_start, steps_done = time.time(), 0
    while step < config.steps:
        t_chunk = time.time()
        run_states, metrics = train_chunk(run_states, data)
        metrics = to_host(metrics)
        step += chunk_len
        dt = time.time() - t_chunk
        steps_done += chunk_len
        nan_steps = np.asarray(metrics["nan_step"])
        rows = []
        for i, (_, seed, sp) in enumerate(runs):
            row = {"step": step, "pruner": labels[i], "seed": seed, "sparsity": sp}
            row.update({k: float(v[i]) for k, v in metrics.items() if k != "nan_step"})
            if nan_steps[i] >= 0:
                row["nan_step"] = int(nan_steps[i])
            rows.append(row)
        if main:
            append_jsonl(metrics_path, rows)
        newly = [i for i in range(num_runs) if nan_steps[i] >= 0]
        if newly:
            log("DIVERGED (loss not finite; run frozen, excluded from results): "
                + ", ".join(f"{labels[i]} seed {runs[i][1]} sparsity {runs[i][2]} at step {int(nan_steps[i])}"
                            for i in newly))

        score_txt = ""
        if config.eval_episodes and (step % config.eval_every == 0 or step == config.steps):
            # this process's runs (one process: all of them); padding runs are not evaluated
            idx, (params, e_mean, e_std) = local_runs(
                (run_states.agent.params, run_states.agent.obs_mean, run_states.agent.obs_std))
            n_own = int(np.sum(idx < num_runs))  # idx ascends: the real runs come first
            keys = jax.random.split(jax.random.fold_in(eval_key, step), 1)[0]

            def policy(obs, _k=[keys]):
                _k[0], sub = jax.random.split(_k[0])
                obs = jnp.asarray(obs)
                if len(idx) > n_own:
                    obs = jnp.concatenate([obs, jnp.repeat(obs[-1:], len(idx) - n_own, 0)], 0)
                run_keys = jax.random.split(sub, r_pad)  # run i acts with key i, whoever evaluates it
                out = act_fn(params, e_mean, e_std, obs, run_keys[idx] if multi else run_keys)
                return np.asarray(out)[:n_own]

            returns = np.full((n_own, config.eval_episodes), np.nan)
            if n_own:
                returns = evaluation.evaluate_policies(
                    policy, env_id, n_own, config.eval_episodes, seed=[runs[i][1] for i in idx[:n_own]],
                    eval_index=step // config.eval_every, max_episode_steps=config.eval_max_episode_steps,
                )
            if multi:
                returns = _gather_returns(returns, idx, r_pad)[:num_runs]
            scores = []
            for i in range(num_runs):
                rets = [float(x) for x in returns[i]]
                mean_ret = float(np.mean(rets))
                norm = (float(normalized_score(mean_ret, score_ref["min"], score_ref["max"]))
                        if score_ref["min"] is not None else None)
                evals[i].append({"step": step, "returns": rets, "return": mean_ret, "normalized_score": norm})
                if nan_steps[i] < 0:
                    scores.append(norm if norm is not None else mean_ret)
            if scores:
                score_txt = (f" | score mean {np.mean(scores):.1f} min {np.min(scores):.1f} "
                             f"max {np.max(scores):.1f}")
            write_summary(False, nan_steps)
        if step % config.checkpoint_every == 0 or step == config.steps:
            ckpt.save(step, run_states, {"step": step, "evals": evals})
        elapsed = time.time() - t_start
        sps = steps_done / max(elapsed, 1e-9)
        eta = (config.steps - step) / max(sps, 1e-9)
        loss_txt = " ".join(f"{k} {np.mean(v[:num_runs]):.4g}" for k, v in metrics.items() if k != "nan_step")
        log(f"step {step}/{config.steps} | {chunk_len / dt:.0f} steps/s per run, "
            f"{num_runs * chunk_len / dt:.0f} total | ETA {_fmt_time(eta)} | {loss_txt}{score_txt}")
        if stop_at is not None and step >= stop_at and step < config.steps:
            ckpt.close()
            return {"complete": False, "step": step}

    a = run_states.agent
    params, masks, f_mean, f_std = to_host((a.params, a.masks, a.obs_mean, a.obs_std))
    if main:
        save_final(workdir, [{"seed": s, "sparsity": p, "pruner": labels[i]} for i, (_, s, p) in enumerate(runs)],
                   take_runs(params, slice(0, num_runs)), take_runs(masks, slice(0, num_runs)),
                   np.asarray(f_mean)[:num_runs], np.asarray(f_std)[:num_runs],
                   dataclasses.asdict(config.agent) | {"obs_dim": info.obs_dim, "act_dim": info.act_dim,
                                                       "max_action": info.max_action, "env_id": env_id})
    ckpt.close()
    summary = write_summary(True, nan_steps)
    log(f"done: {workdir}/summary.json")
    return summary


def _gather_returns(returns: np.ndarray, idx: np.ndarray, r_pad: int) -> np.ndarray:
    """Every process's evaluation returns (rows: its runs ``idx``, the real ones first), as
    ``(r_pad, episodes)`` on every process; rows of padding runs are NaN. A collective.

    float64 returns travel as pairs of uint32 (without jax_enable_x64 they would be cut
    to float32): every process ends with exactly the values its owner computed.
    """
    from jax.experimental import multihost_utils

    full = np.full((len(idx), returns.shape[1]), np.nan, np.float64)
    full[:len(returns)] = returns
    bits, where = multihost_utils.process_allgather(
        (np.ascontiguousarray(full).view(np.uint32), np.asarray(idx, np.int32)), tiled=False)
    out = np.full((r_pad, returns.shape[1]), np.nan, np.float64)
    out[np.asarray(where).reshape(-1)] = np.ascontiguousarray(bits).reshape(-1, bits.shape[-1]).view(np.float64)
    return out
