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
import os
import time
from typing import Callable, Dict, List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_orl import pruning
from sparse_orl.algos import make_algorithm
from sparse_orl.checkpoint import Checkpointer, abstract_like, save_final
from sparse_orl.config import PruneConfig
from sparse_orl.data import check_env_spaces, load_dataset, normalized_score, obs_stats, to_device
from sparse_orl.data.transitions import subset_indices, take_rows
from sparse_orl.io_utils import atomic_write_json
from sparse_orl.sharding import padded_num_runs, replicated, runs_mesh, runs_sharding, to_global, to_host
from sparse_orl.training import init_runs, make_act_fn, make_train_chunk, take_runs
from sparse_orl.experiment_config import ExperimentConfig, LogConfig  # noqa: F401  (importable from here too)
from sparse_orl.workdir import (check_workdir, claim_workdir, comparable_config, prepare_workdir,  # noqa: F401
                               provenance, read_summary, score_reference)


def run_experiment(config: ExperimentConfig, log: Callable[[str], None] = print,
                   stop_at: Optional[int] = None, logs: LogConfig = LogConfig()) -> Dict:
    """Train, evaluate, checkpoint and summarize every run of ``config``; returns the summary.

    One compiled program holds every run, unless ``config.prunes`` has the narrow dense
    control (``PruneConfig("narrow")``, :mod:`sparse_orl.narrow`): its networks have other
    shapes, so each of its sparsity levels is a program of its own, trained after the
    others in ``<workdir>/programs/<name>/`` (each resumable, each a full workdir of its own),
    and ``<workdir>/summary.json`` merges them. See :func:`_run_program` for one program.
    """
    from sparse_orl.interrupts import StopSignals

    config.validate()
    t0 = time.time()
    with StopSignals() as stop:
        if not any(p.is_narrow for p in config.prunes):
            summary = _run_program(config, log, stop_at, logs, stop)
        else:
            summary = _run_with_narrow(config, log, stop_at, logs, stop)
    if summary.get("complete") and jax.process_index() == 0:
        _finish(config, summary, log, logs, time.time() - t0)
    return summary


def _finish(config: ExperimentConfig, summary: Dict, log, logs: LogConfig, wall_s: float) -> None:
    """The final table, and the report in ``<workdir>/report/``."""
    from sparse_orl.progress import final_table

    log("\n" + final_table(summary, wall_s))
    if logs.report:
        from sparse_orl import reporting

        try:
            reporting.make_report(config.workdir, os.path.join(config.workdir, "report"), log=log)
        except Exception as e:  # noqa: BLE001  (a report failure must not fail a finished run)
            log(f"warning: report not written ({type(e).__name__}: {e}); run python -m launch.report "
                f"--workdir={config.workdir}")


def _run_with_narrow(config: ExperimentConfig, log: Callable[[str], None], stop_at: Optional[int],
                     logs: LogConfig, stop) -> Dict:
    main = jax.process_index() == 0
    workdir = config.workdir
    prepare_workdir(workdir)
    lock = claim_workdir(workdir) if main else None
    try:
        return _train_with_narrow(config, log, stop_at, main, logs, stop)
    finally:
        if lock is not None:
            lock.release()


def _train_with_narrow(config: ExperimentConfig, log, stop_at, main: bool, logs: LogConfig, stop) -> Dict:
    from sparse_orl.data import load_dataset_info
    from sparse_orl.narrow import narrow_config

    workdir = config.workdir
    check_workdir(workdir, config, write=False)  # refuse another experiment before any work
    summary_path = os.path.join(workdir, "summary.json")
    done = read_summary(summary_path, log)
    if done is not None and done.get("complete"):
        log(f"{workdir}: already complete ({config.steps} steps); nothing to do")
        return done
    info = load_dataset_info(config.dataset, env_id=config.env)
    check_workdir(workdir, config, write=main)  # the dataset loads: the workdir is claimed
    programs: List[Tuple[str, ExperimentConfig, Optional[Tuple[float, Dict]]]] = []
    others = tuple(p for p in config.prunes if not p.is_narrow)
    if others:
        programs.append(("main", dataclasses.replace(config, prunes=others), None))
    for s in config.sparsities:
        cfg, record = narrow_config(config.agent_config, info.obs_dim, info.act_dim, info.max_action, s)
        name = f"narrow-{s:g}"
        programs.append((name, dataclasses.replace(config, agent=cfg, prunes=(PruneConfig("none"),),
                                                    sparsities=(0.0,), width_multiplier=1.0), (s, record)))
    runs, first, complete = [], None, True
    for name, cfg, narrow in programs:
        cfg = dataclasses.replace(cfg, workdir=os.path.join(workdir, "programs", name))
        if narrow is not None:
            widths = {k: v["widths"] for k, v in narrow[1]["networks"].items()}
            log(f"[{name}] dense network of widths {widths}: {narrow[1]['kept']:,} kernel weights of the scored "
                f"networks (the {narrow[0]:g}-sparse ones keep {narrow[1]['target']:,})")
        out = _run_program(cfg, lambda m, _n=name: log(f"[{_n}] {m}"), stop_at, logs, stop)
        if not out.get("complete"):
            return out
        first = first or out
        for r in out["runs"]:
            if narrow is not None:
                r = dict(r, pruner="narrow", sparsity=narrow[0], narrow=narrow[1])
            runs.append(dict(r, program=name))
    summary = dict(first, config=config.to_dict(), runs=runs, complete=complete,
                   programs={name: os.path.join("programs", name) for name, _, _ in programs})
    if main:
        atomic_write_json(summary_path, summary)
    log(f"done: {summary_path}")
    return summary


def _run_program(config: ExperimentConfig, log: Callable[[str], None] = print,
                 stop_at: Optional[int] = None, logs: LogConfig = LogConfig(), stop=None) -> Dict:
    """Train, evaluate, checkpoint and summarize the runs of ``config`` in one compiled program.

    With several processes every process calls this with the same config and gets the
    same summary; only process 0 writes files (see the module docstring).

    ``stop_at`` ends the process's work abruptly once that step is reached, without
    a final checkpoint, exactly as a kill would (tests use it to check resuming).
    """
    multi = jax.process_count() > 1
    main = jax.process_index() == 0  # the process that writes files and logs
    if not main:
        log = lambda _m: None  # noqa: E731
    workdir = config.workdir
    prepare_workdir(workdir)
    lock = claim_workdir(workdir) if main else None
    try:
        return _train_program(config, log, stop_at, main, multi, logs, stop)
    finally:
        if lock is not None:
            lock.release()


def _identity(config: ExperimentConfig) -> Dict:
    """What a checkpoint must have been trained for to be resumed by ``config``."""
    return comparable_config(config.to_dict())


def _train_program(config: ExperimentConfig, log, stop_at, main: bool, multi: bool, logs: LogConfig,
                   stop) -> Dict:
    from sparse_orl import evaluation  # gymnasium import kept off the library's import path
    from sparse_orl.interrupts import Interrupted
    from sparse_orl.logs import MetricsLog
    from sparse_orl.progress import ChunkSizer, group_name, group_of, progress_line, score_text

    workdir = config.workdir
    check_workdir(workdir, config, write=False)  # refuse another experiment before any work
    summary_path = os.path.join(workdir, "summary.json")
    done = read_summary(summary_path, log)
    if done is not None and done.get("complete"):
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
    agent_cfg = config.agent_config
    agent = make_algorithm(agent_cfg.for_run(config.steps), info.obs_dim, info.act_dim, info.max_action)
    # preprocessing needs whole episodes (IQL's reward scale), so it sees the whole dataset; it may
    # refuse the data, so it runs before the workdir is claimed
    transitions = agent.preprocess(transitions, info)
    runs = config.runs
    num_runs = len(runs)
    subsets = None
    if config.max_transitions is not None:
        subsets = np.stack([subset_indices(seed, transitions.size, config.max_transitions) for _, seed, _ in runs])
    check_workdir(workdir, config, write=main)  # flags and dataset are good: the workdir is claimed
    if subsets is None:
        obs_mean, obs_std = obs_stats(transitions, agent_cfg.normalize_obs)
    else:  # each run's statistics from its own subset
        stats = [obs_stats(take_rows(transitions, rows), agent_cfg.normalize_obs) for rows in subsets]
        obs_mean, obs_std = np.stack([m for m, _ in stats]), np.stack([s for _, s in stats])
    mesh = runs_mesh()
    r_pad = padded_num_runs(num_runs, mesh)
    data = to_global(to_device(transitions), replicated(mesh))
    labels = [config.run_label(m, sp) for m, _, sp in runs]
    groups_of_runs = [group_of(labels[i], runs[i][2]) for i in range(num_runs)]

    t0 = time.time()
    segments = []  # contiguous runs sharing one init program: a method, or the dense network
    for i, (m, seed, sp) in enumerate(runs):
        prune = PruneConfig("none") if sp == 0.0 else config.prunes[m]
        if segments and segments[-1][0] == prune:
            segments[-1][1].append(i)
        else:
            segments.append((prune, [i]))
    def rows(x, idx):
        return x if x is None or np.ndim(x) < 2 else np.asarray(x)[idx]

    states = [init_runs(agent, prune, data, [runs[i][1] for i in idx], [runs[i][2] for i in idx],
                        rows(obs_mean, idx), rows(obs_std, idx), subsets=rows(subsets, idx))
              for prune, idx in segments]
    # pad with copies of the last run so the runs axis splits evenly over the devices
    states.append(jax.tree_util.tree_map(lambda x: jnp.repeat(x[-1:], r_pad - num_runs, 0), states[-1]))
    run_states = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, 0), *states)
    run_states = to_global(run_states, runs_sharding(mesh))
    jax.block_until_ready(run_states)
    where = f" on {mesh.devices.size} {mesh.devices.flat[0].platform.upper()} devices" if mesh.devices.size > 1 else ""
    log(f"initialized {num_runs} runs ({', '.join(dict.fromkeys(labels))}){where} in {time.time() - t0:.1f}s")

    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
    start_step, evals = 0, [[] for _ in range(num_runs)]
    restored = ckpt.restore_latest(abstract_like(run_states))
    if restored is not None:
        start_step, run_states, meta = restored
        if "experiment" in meta and meta["experiment"] != _identity(config):
            ckpt.close()
            old, new = meta["experiment"], _identity(config)
            diff = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
                             if old.get(k) != new.get(k))
            raise ValueError(f"--workdir={workdir}: its checkpoints were trained for a different experiment "
                             f"({diff}). Use a new --workdir, or re-run the original command to resume.")
        evals = meta["evals"]
        log(f"resumed from checkpoint at step {start_step}")
        if stop is not None:
            stop.last_checkpoint = start_step
    metric_names = list(agent.metric_names)
    mlog = MetricsLog(workdir, metric_names + ["return", "normalized_score", "nan_step"], start_step,
                      tensorboard=logs.tensorboard, wandb_project=logs.wandb_project, wandb_mode=logs.wandb_mode,
                      config=config.to_dict(), write=main, log=log)

    host_masks = to_host(run_states.agent.masks)
    mask_reports = [pruning.masks_report(take_runs(host_masks, i), warn=restored is None and main,
                                         context=f"{labels[i]}, seed {s}, sparsity {p}")
                    for i, (_, s, p) in enumerate(runs)]
    kept = {}
    for i, g in enumerate(groups_of_runs):
        kept.setdefault(g, []).append(sum(r["kept"] for r in mask_reports[i].values()))
    log("kernel weights trained per run: " + ", ".join(
        f"{group_name(g)} {int(np.mean(v)):,}" for g, v in kept.items())
        + ("" if config.max_transitions is None else f"; each seed on its own {config.max_transitions:,} of "
           f"{transitions.size:,} transitions"))
    score_ref = score_reference(info, env_id)
    prov = provenance(info)

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
        speed = train_time[1] / train_time[0] if train_time[0] > 0 else None
        for r in out_runs:
            r["train_steps_per_s"] = speed  # per run, this program's (all its runs share each matmul pass)
        summary = {"config": config.to_dict(), "provenance": prov, "algo_label": config.agent.label,
                   "algo_name": config.agent.display_name, "score_reference": score_ref,
                   "env_id": env_id, "complete": complete, "runs": out_runs}
        if main:
            atomic_write_json(summary_path, summary)
        return summary

    train_chunk = make_train_chunk(agent, config.batch_size, None, mesh)
    act_fn = make_act_fn(agent)
    eval_key = jax.random.PRNGKey(10_007)
    sizer = ChunkSizer(target_s=min(logs.chunk_s, logs.log_every_s))

    def next_multiple(step, every):
        return (step // every + 1) * every

    step = start_step
    nan_steps = np.asarray(to_host(run_states.nan_step))
    reported = {i for i in range(num_runs) if nan_steps[i] >= 0}
    train_time = [0.0, 0]  # seconds and steps of training, the compiling chunk left out
    sums = np.zeros((len(metric_names), num_runs))
    since_row = 0
    t_line, line_steps, line_time = time.time(), 0, 0.0
    t_after_compile = time.time()
    compiled = False
    try:
        while step < config.steps:
            ends = [config.steps, next_multiple(step, config.checkpoint_every), next_multiple(step, config.eval_every)]
            if stop_at is not None and stop_at > step:
                ends.append(stop_at)
            n = sizer.next(min(ends) - step)
            t_chunk = time.time()
            run_states, metrics = train_chunk(run_states, data, jnp.int32(n))
            metrics = to_host(metrics)
            dt = time.time() - t_chunk
            step += n
            sizer.observe(n, dt, compiled=not compiled)
            if compiled:
                train_time[0] += dt
                train_time[1] += n
                line_steps += n
                line_time += dt
            nan_steps = np.asarray(metrics["nan_step"])
            sums += n * np.stack([np.asarray(metrics[k][:num_runs], np.float64) for k in metric_names])
            since_row += n

            newly = [i for i in range(num_runs) if nan_steps[i] >= 0 and i not in reported]
            if newly:
                reported.update(newly)
                log("DIVERGED (loss not finite; run frozen, excluded from results): "
                    + ", ".join(f"{labels[i]} seed {runs[i][1]} sparsity {runs[i][2]} at step {int(nan_steps[i])}"
                                for i in newly))

            at_row = step % config.eval_every == 0 or step == config.steps  # metric rows at least here
            at_eval = bool(config.eval_episodes) and at_row
            at_ckpt = step % config.checkpoint_every == 0 or step == config.steps
            interrupted = stop is not None and stop.requested and step < config.steps  # at the end: finish
            eval_rows: Dict[int, Dict] = {}
            score_txt = ""
            if at_eval:
                returns = evaluation.evaluate_runs(
                    act_fn, run_states.agent.params, run_states.agent.obs_mean, run_states.agent.obs_std, env_id,
                    num_runs, r_pad, config.eval_episodes, [r[1] for r in runs], step // config.eval_every,
                    jax.random.split(jax.random.fold_in(eval_key, step), 1)[0], config.eval_max_episode_steps)
                scores = []
                for i in range(num_runs):
                    rets = [float(x) for x in returns[i]]
                    mean_ret = float(np.mean(rets))
                    norm = (float(normalized_score(mean_ret, score_ref["min"], score_ref["max"]))
                            if score_ref["min"] is not None else None)
                    evals[i].append({"step": step, "returns": rets, "return": mean_ret, "normalized_score": norm})
                    eval_rows[i] = {"return": mean_ret, "normalized_score": norm}
                    ok = nan_steps[i] < 0
                    scores.append((norm if norm is not None else mean_ret) if ok else None)
                score_txt = score_text(groups_of_runs, scores)
                write_summary(False, nan_steps)
            now = time.time()
            line_due = (not compiled or at_eval or interrupted or step >= config.steps
                        or now - t_line >= logs.log_every_s)
            if line_due or at_ckpt or at_row:
                rows = []
                for i, (_, seed, sp) in enumerate(runs):
                    row = {"step": step, "pruner": labels[i], "sparsity": sp, "seed": seed}
                    row.update({k: float(sums[j, i] / since_row) for j, k in enumerate(metric_names)})
                    row.update(eval_rows.get(i, {}))
                    if nan_steps[i] >= 0:
                        row["nan_step"] = int(nan_steps[i])
                    rows.append(row)
                mlog.write(rows)
                losses = {k: float(np.nanmean(sums[j] / since_row)) if np.isfinite(sums[j]).any() else float("nan")
                          for j, k in enumerate(metric_names)}
                sums[:] = 0.0
                since_row = 0
            if at_ckpt or interrupted:
                ckpt.save(step, run_states, {"step": step, "evals": evals, "experiment": _identity(config)})
                if stop is not None:
                    stop.last_checkpoint = step
            if line_due:
                if not compiled:
                    log(f"compiled; first {n} steps of {num_runs} runs in {dt:.1f}s")
                    t_after_compile = time.time()
                else:
                    run_sps = line_steps / max(line_time, 1e-9)
                    elapsed = time.time() - t_after_compile
                    done_since = train_time[1]
                    eta = (config.steps - step) * elapsed / max(done_since, 1)
                    log(progress_line(step, config.steps, run_sps, num_runs, eta, losses, score_txt))
                if not compiled and score_txt:
                    log(f"step {step}/{config.steps}{score_txt}")
                t_line, line_steps, line_time = time.time(), 0, 0.0
            compiled = True
            if interrupted:
                write_summary(False, nan_steps)
                log(f"interrupted at step {step}; run the same command to resume")
                raise Interrupted(step, stop.signum, workdir)
            if stop_at is not None and step >= stop_at and step < config.steps:
                return {"complete": False, "step": step}
    finally:
        mlog.close()
        ckpt.close()

    a = run_states.agent
    params, masks, f_mean, f_std = to_host((a.params, a.masks, a.obs_mean, a.obs_std))
    if main:
        save_final(workdir, [{"seed": s, "sparsity": p, "pruner": labels[i]} for i, (_, s, p) in enumerate(runs)],
                   take_runs(params, slice(0, num_runs)), take_runs(masks, slice(0, num_runs)),
                   np.asarray(f_mean)[:num_runs], np.asarray(f_std)[:num_runs],
                   agent_cfg.to_dict() | {"obs_dim": info.obs_dim, "act_dim": info.act_dim,
                                             "max_action": info.max_action, "env_id": env_id})
    summary = write_summary(True, nan_steps)
    log(f"done: {workdir}/summary.json")
    return summary
