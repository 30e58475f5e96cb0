"""One compiled program of a job: its runs initialized (masks at init), restored, trained by the host
loop with its hooks, evaluated, checkpointed, and saved.

With several processes every process calls :func:`run_program` with the same program and gets the
same summary; only process 0 writes files and logs (see :mod:`sparse_orl.job.run`).
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Dict, List, Optional

import jax
import jax.numpy as jnp
import numpy as np

from sparse_orl import pruning
from sparse_orl.algos import make_algorithm
from sparse_orl.config.job import ExperimentConfig, LogConfig, comparable_config
from sparse_orl.config.prune import PruneConfig
from sparse_orl.data.transitions import to_device
from sparse_orl.job import hooks as hooks_lib
from sparse_orl.job.data import JobData
from sparse_orl.job.loop import host_loop
from sparse_orl.job.progress import ChunkSizer, group_name, group_of
from sparse_orl.store.checkpoint import Checkpointer, abstract_like
from sparse_orl.store.final import save_final
from sparse_orl.store.metrics_log import MetricsLog
from sparse_orl.store.summary import Eval, RunResult, Summary, write_summary
from sparse_orl.store.workdir import provenance, score_reference
from sparse_orl.train.runs import init_runs, make_act_fn, make_train_chunk, take_runs
from sparse_orl.train.sharding import padded_num_runs, replicated, runs_mesh, runs_sharding, to_global, to_host

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Program:
    """One compiled program of a job: its config (its own workdir), and where its runs sit in the job."""

    name: str  # "" for the only program of a job; "main", "narrow-0.95" otherwise
    config: ExperimentConfig
    narrow: Optional[Dict] = None  # the narrow control: {"sparsity": the level it matches, "record": its sizing}

    @property
    def workdir(self) -> str:
        return self.config.workdir


def identity(config: ExperimentConfig, dataset_sha256: Optional[str] = None) -> Dict:
    """What a checkpoint must have been trained for to be resumed by ``config``: its options and the
    dataset's content (a file replaced between a kill and the resume is refused, not mixed in)."""
    out = comparable_config(config.to_dict())
    if dataset_sha256:
        out["dataset_sha256"] = dataset_sha256
    return out


def _init_states(agent, config: ExperimentConfig, data, job: JobData, mesh, r_pad: int):
    """Every run's initial state (pruning at init included), stacked and sharded over the runs mesh."""
    runs = config.runs
    segments: List = []  # contiguous runs sharing one init program: a method, or the dense network
    for i, (m, _, sp) in enumerate(runs):
        prune = PruneConfig("dense") if sp == 0.0 else config.prunes[m]
        if segments and segments[-1][0] == prune:
            segments[-1][1].append(i)
        else:
            segments.append((prune, [i]))
    states = []
    for prune, idx in segments:
        seeds = [runs[i][1] for i in idx]
        mean, std = job.obs_stats(config.agent_config.normalize_obs, seeds)
        states.append(init_runs(agent, prune, data, seeds, [runs[i][2] for i in idx], mean, std,
                                subsets=job.subsets(seeds)))
    # pad with copies of the last run so the runs axis splits evenly over the devices
    states.append(jax.tree_util.tree_map(lambda x: jnp.repeat(x[-1:], r_pad - len(runs), 0), states[-1]))
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, 0), *states)
    return to_global(stacked, runs_sharding(mesh))


def _restore(ckpt: Checkpointer, states, config: ExperimentConfig, num_runs: int, sha: str):
    """(start step, states, evals) from the newest readable checkpoint, or from step 0."""
    restored = ckpt.restore_latest(abstract_like(states))
    if restored is None:
        return 0, states, [[] for _ in range(num_runs)]
    step, states, meta = restored
    old = dict(meta.get("experiment") or {})
    old_sha = old.pop("dataset_sha256", None)
    if old_sha is not None and old_sha != sha:
        raise ValueError(f"--dataset={config.dataset}: its content changed since the checkpoints in "
                         f"{config.workdir} were written (sha256 {old_sha[:12]}... -> {sha[:12]}...); resuming would "
                         "mix two datasets. Restore the original file, or use a new --workdir.")
    if "experiment" in meta and comparable_config(old) != identity(config):
        old, new = comparable_config(old), identity(config)
        diff = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
                         if old.get(k) != new.get(k))
        raise ValueError(f"--workdir={config.workdir}: its checkpoints were trained for a different experiment "
                         f"({diff}). Use a new --workdir, or re-run the original command to resume.")
    return step, states, [[Eval.from_json(e) for e in run] for run in meta["evals"]]


def run_program(program: Program, job: JobData, log: Log, logs: LogConfig, stop=None,
                stop_at: Optional[int] = None, main: bool = True) -> Summary:
    """Train, evaluate, checkpoint and summarize the runs of ``program``; returns its summary.

    ``stop_at`` ends the work abruptly once that step is reached, without a final checkpoint,
    exactly as a kill would (tests use it to check resuming).
    """
    config, workdir = program.config, program.workdir
    info = job.info
    agent_cfg = config.agent_config
    agent = make_algorithm(agent_cfg.for_run(config.steps), info.obs_dim, info.act_dim, info.max_action)
    mesh = runs_mesh()
    runs = config.runs
    num_runs, r_pad = len(runs), padded_num_runs(len(runs), mesh)
    data = to_global(to_device(job.transitions), replicated(mesh))
    labels = [config.run_label(m, sp) for m, _, sp in runs]
    levels = [sp for _, _, sp in runs]  # the level a run is named by (a narrow run: the level it matches)
    if program.narrow is not None:
        labels, levels = ["narrow"] * num_runs, [program.narrow["sparsity"]] * num_runs
    groups = [group_of(labels[i], levels[i]) for i in range(num_runs)]
    t0 = time.time()
    states = _init_states(agent, config, data, job, mesh, r_pad)
    jax.block_until_ready(states)
    where = f" on {mesh.devices.size} {mesh.devices.flat[0].platform.upper()} devices" if mesh.devices.size > 1 else ""
    log(f"initialized {num_runs} runs ({', '.join(dict.fromkeys(labels))}){where} in {time.time() - t0:.1f}s")

    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    try:
        start, states, evals = _restore(ckpt, states, config, num_runs, info.sha256)
    except ValueError:
        ckpt.close()
        raise
    if start:
        log(f"resumed from checkpoint at step {start}")
        if stop is not None:
            stop.last_checkpoint = start
    host_masks = to_host(states.agent.masks)
    mask_reports = [pruning.masks_report(take_runs(host_masks, i), warn=start == 0 and main,
                                         context=f"{labels[i]}, seed {s}, sparsity {levels[i]}")
                    for i, (_, s, _) in enumerate(runs)]
    kept: Dict = {}
    for i, g in enumerate(groups):
        kept.setdefault(g, []).append(sum(r["kept"] for r in mask_reports[i].values()))
    log("kernel weights trained per run: " + ", ".join(f"{group_name(g)} {int(np.mean(v)):,}" for g, v in kept.items())
        + ("" if config.max_transitions is None else
           f"; each seed on its own {config.max_transitions:,} of {job.transitions.size:,} transitions"))

    record = hooks_lib.Record(labels, [s for _, s, _ in runs], levels, evals,
                              np.asarray(to_host(states.nan_step))[:num_runs])
    specs = agent.network_specs
    base = Summary(config=config.to_dict(), runs=[], provenance=provenance(info), algo_label=config.agent.label,
                   algo_name=config.agent.display_name, score_reference=score_reference(info, job.env_id),
                   env_id=job.env_id, networks=[{"name": s.name, "title": s.label} for s in specs])

    def summary(complete: bool) -> Summary:
        out = []
        for i, (_, seed, _) in enumerate(runs):
            diverged = int(record.nan_steps[i]) >= 0
            out.append(RunResult(seed=seed, sparsity=levels[i], pruner=labels[i],
                                 status="diverged" if diverged else "ok",
                                 nan_step=int(record.nan_steps[i]) if diverged else None, masks=mask_reports[i],
                                 evals=[] if diverged else list(record.evals[i]),
                                 train_steps_per_s=record.steps_per_s, program_runs=num_runs,
                                 narrow=None if program.narrow is None else program.narrow["record"]))
        s = dataclasses.replace(base, runs=out, complete=complete)
        if main:
            write_summary(workdir, s)
        return s

    act_fn = make_act_fn(agent)
    eval_key = jax.random.PRNGKey(10_007)

    def evaluate(st, step):
        from sparse_orl.job import evaluation

        a = st.agent
        return evaluation.evaluate_runs(
            act_fn, a.params, a.obs_mean, a.obs_std, job.env_id, num_runs, r_pad, config.eval_episodes,
            [r[1] for r in runs], step // config.eval_every,
            jax.random.split(jax.random.fold_in(eval_key, step), 1)[0], config.eval_max_episode_steps)

    mlog = MetricsLog(workdir, list(agent.metric_names) + ["return", "normalized_score", "nan_step"], start,
                      tensorboard=logs.tensorboard, wandb_project=logs.wandb_project, wandb_mode=logs.wandb_mode,
                      config=config.to_dict(), write=main, log=log)
    rows = hooks_lib.MetricRows(record, mlog, agent.metric_names)
    progress = hooks_lib.Progress(record, rows, log, logs.log_every_s)
    hooks = [hooks_lib.Divergence(record, log),
             hooks_lib.Evaluate(record, evaluate, groups, base.score_reference, lambda: summary(False)),
             rows, hooks_lib.Checkpoint(record, ckpt, identity(config, info.sha256), stop), progress]
    if stop is not None:
        hooks.append(hooks_lib.Stop(stop, lambda: summary(False), log, workdir))
    try:
        states, step = host_loop(
            make_train_chunk(agent, config.batch_size, None, mesh), states, data, start, config.steps,
            config.eval_every, config.checkpoint_every, config.eval_episodes,
            ChunkSizer(target_s=min(logs.chunk_s, logs.log_every_s)), hooks, progress.due,
            (lambda: stop is not None and stop.requested), stop_at)
    finally:
        mlog.close()
        ckpt.close()
    if step < config.steps:  # stopped abruptly (stop_at), as a kill would
        return dataclasses.replace(base, runs=[], complete=False, step=step)
    a = states.agent
    params, masks, f_mean, f_std = to_host((a.params, a.masks, a.obs_mean, a.obs_std))
    if main:
        save_final(workdir, [{"seed": s, "sparsity": levels[i], "pruner": labels[i]} for i, (_, s, _) in enumerate(runs)],
                   take_runs(params, slice(0, num_runs)), take_runs(masks, slice(0, num_runs)),
                   np.asarray(f_mean)[:num_runs], np.asarray(f_std)[:num_runs],
                   agent_cfg.to_dict() | {"obs_dim": info.obs_dim, "act_dim": info.act_dim,
                                          "max_action": info.max_action, "env_id": job.env_id})
    out = summary(True)
    log(f"done: {workdir}/summary.json")
    return out
