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
from sparse_orl.store.atomic import atomic_write_json, read_json
from sparse_orl.store.checkpoint import checkpoint_steps
from sparse_orl.store.checkpoint import Checkpointer, abstract_like
from sparse_orl.store.final import save_final
from sparse_orl.store.metrics_log import MetricsLog
from sparse_orl.store.summary import Eval, RunResult, Summary, write_summary
from sparse_orl.store.workdir import provenance, score_reference
from sparse_orl.trainer import compact
from sparse_orl.trainer.runs import init_runs, make_act_fn, make_train_chunk, take_runs
from sparse_orl.trainer.sharding import padded_num_runs, replicated, runs_mesh, runs_sharding, to_global, to_host

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


FORMAT_FILE = "sparse_format.json"  # in a program's workdir: its compact layers, fixed when it first started


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


@dataclasses.dataclass(frozen=True)
class Names:
    """How a program's runs are named in every output: label, the sparsity level a run stands for
    (a narrow run: the level it matches), seed, and the (label, level) group of the progress lines."""

    labels: List[str]
    levels: List[float]
    seeds: List[int]

    @classmethod
    def of(cls, program: Program) -> "Names":
        runs = program.config.runs
        if program.narrow is not None:
            return cls(["narrow"] * len(runs), [program.narrow["sparsity"]] * len(runs), [s for _, s, _ in runs])
        return cls([program.config.run_label(m, sp) for m, _, sp in runs], [sp for _, _, sp in runs],
                   [s for _, s, _ in runs])

    @property
    def groups(self):
        return [group_of(lab, lv) for lab, lv in zip(self.labels, self.levels)]


def _mask_reports(states, names: Names, warn: bool, log: Log, data_text: str):
    """Per run, what each network's mask keeps; logs the kept count of every group before training."""
    host = to_host(compact.dense_view(states.agent)[1])
    reports = [pruning.masks_report(take_runs(host, i), warn=warn,
                                    context=f"{names.labels[i]}, seed {names.seeds[i]}, sparsity {names.levels[i]}")
               for i in range(len(names.labels))]
    kept: Dict = {}
    for i, g in enumerate(names.groups):
        kept.setdefault(g, []).append(sum(r["kept"] for r in reports[i].values()))
    log("kernel weights trained per run: " + ", ".join(f"{group_name(g)} {int(np.mean(v)):,}" for g, v in kept.items())
        + data_text)
    return reports


def _summarizer(program: Program, names: Names, record, reports, base: Summary, main: bool):
    """``summary(complete)``: the program's summary so far, written to its workdir (process 0)."""

    def summary(complete: bool) -> Summary:
        out = []
        for i in range(record.num_runs):
            diverged = int(record.nan_steps[i]) >= 0
            out.append(RunResult(seed=names.seeds[i], sparsity=names.levels[i], pruner=names.labels[i],
                                 status="diverged" if diverged else "ok",
                                 nan_step=int(record.nan_steps[i]) if diverged else None, masks=reports[i],
                                 evals=[] if diverged else list(record.evals[i]),
                                 train_steps_per_s=record.steps_per_s, program_runs=record.num_runs,
                                 narrow=None if program.narrow is None else program.narrow["record"]))
        s = dataclasses.replace(base, runs=out, complete=complete)
        if main:
            write_summary(program.workdir, s)
        return s

    return summary


def _evaluator(agent, config: ExperimentConfig, job: JobData, r_pad: int):
    """``evaluate(states, step)``: every run's evaluation returns at ``step`` (episodes seeded per run)."""
    from sparse_orl.job import evaluation  # gymnasium and MuJoCo load when a job evaluates

    act_fn, eval_key, runs = make_act_fn(agent), jax.random.PRNGKey(10_007), config.runs

    def evaluate(st, step):
        a = st.agent
        return evaluation.evaluate_runs(
            act_fn, a.params, a.obs_mean, a.obs_std, job.env_id, len(runs), r_pad, config.eval_episodes,
            [r[1] for r in runs], step // config.eval_every,
            jax.random.split(jax.random.fold_in(eval_key, step), 1)[0], config.eval_max_episode_steps)

    return evaluate


def _save(program: Program, names: Names, states, agent_cfg, job: JobData, main: bool = True) -> None:
    """``final/params.npz`` and ``final/runs.json`` of every run, written by process 0 (every process calls
    this: gathering the runs is a collective)."""
    n, info = len(names.labels), job.info
    a = states.agent
    params, masks = compact.dense_view(a)
    params, masks, f_mean, f_std = to_host((params, masks, a.obs_mean, a.obs_std))
    if not main:
        return
    save_final(program.workdir, [{"seed": names.seeds[i], "sparsity": names.levels[i], "pruner": names.labels[i]}
                                 for i in range(n)],
               take_runs(params, slice(0, n)), take_runs(masks, slice(0, n)), np.asarray(f_mean)[:n],
               np.asarray(f_std)[:n], agent_cfg.to_dict() | {"obs_dim": info.obs_dim, "act_dim": info.act_dim,
                                                             "max_action": info.max_action, "env_id": job.env_id})


def _in_format(program: Program, agent, states, fmt: str, mesh, log: Log, main: bool):
    """The run states with the program's compact layers compact (:mod:`sparse_orl.trainer.compact`): the
    plan recorded in its workdir when it first started (a resume trains exactly the same layout), else
    planned now and recorded."""
    path = os.path.join(program.workdir, FORMAT_FILE)
    started = bool(checkpoint_steps(program.workdir))
    if started and os.path.exists(path):
        plan = read_json(path, "format file").get("layers", {})
    elif fmt == "compact" and not started:
        host = to_host(states.agent)
        plan = compact.plan_layers(host.params, host.masks, program.config.sparse_format, program.config.batch_size)
    else:  # masked, or checkpoints of a job that started before formats were recorded
        plan = {}
    if main:
        atomic_write_json(path, {"format": "compact" if plan else "masked", "layers": plan})
    text = compact.describe(plan)
    if text:
        log(text)
    if not any(v["compact"] for v in plan.values()):
        return states
    return to_global(states.replace(agent=compact.to_compact(agent, states.agent, plan)), runs_sharding(mesh))


def run_program(program: Program, job: JobData, log: Log, logs: LogConfig, stop=None,
                stop_at: Optional[int] = None, main: bool = True, fmt: str = "masked") -> Summary:
    """Train, evaluate, checkpoint and summarize the runs of ``program``; returns its summary.

    ``stop_at`` ends the work abruptly once that step is reached, without a final checkpoint,
    exactly as a kill would (tests use it to check resuming).
    """
    config, workdir, info = program.config, program.workdir, job.info
    agent_cfg = config.agent_config
    agent = make_algorithm(agent_cfg.for_run(config.steps), info.obs_dim, info.act_dim, info.max_action)
    mesh = runs_mesh()
    names = Names.of(program)
    num_runs, r_pad = len(names.labels), padded_num_runs(len(names.labels), mesh)
    data = to_global(to_device(job.transitions), replicated(mesh))
    t0 = time.time()
    states = jax.block_until_ready(_init_states(agent, config, data, job, mesh, r_pad))
    where = f" on {mesh.devices.size} {mesh.devices.flat[0].platform.upper()} devices" if mesh.devices.size > 1 else ""
    log(f"initialized {num_runs} runs ({', '.join(dict.fromkeys(names.labels))}){where} in {time.time() - t0:.1f}s")
    states = _in_format(program, agent, states, fmt, mesh, log, main)
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
    reports = _mask_reports(states, names, start == 0 and main, log, job.subset_text())
    record = hooks_lib.Record(names.labels, names.seeds, names.levels, evals,
                              np.asarray(to_host(states.nan_step))[:num_runs])
    base = Summary(config=config.to_dict(), runs=[], provenance=provenance(info), algo_label=config.agent.label,
                   algo_name=config.agent.display_name, score_reference=score_reference(info, job.env_id),
                   env_id=job.env_id, networks=[{"name": s.name, "title": s.label} for s in agent.network_specs])
    summary = _summarizer(program, names, record, reports, base, main)
    mlog = MetricsLog(workdir, list(agent.metric_names) + ["return", "normalized_score", "nan_step"], start,
                      tensorboard=logs.tensorboard, wandb_project=logs.wandb_project, wandb_mode=logs.wandb_mode,
                      config=config.to_dict(), write=main, log=log)
    rows = hooks_lib.MetricRows(record, mlog, agent.metric_names)
    progress = hooks_lib.Progress(record, rows, log, logs.log_every_s)
    hooks = [hooks_lib.Divergence(record, log),
             hooks_lib.Evaluate(record, _evaluator(agent, config, job, r_pad), names.groups, base.score_reference,
                                lambda: summary(False)),
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
    _save(program, names, states, agent_cfg, job, main)
    out = summary(True)
    log(f"done: {workdir}/summary.json")
    return out
