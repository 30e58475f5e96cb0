"""A sweep: algos x pruners x sparsity levels x datasets x seeds, as a few resumable programs.

Planning. Runs that share shapes (same agent config and dataset) go into one
:class:`~sparse_orl.experiment.ExperimentConfig` -- one compiled program with
every (pruner, seed, sparsity) run vmapped; dense ("none") runs once per seed.
``max_runs_per_program`` splits a program over seeds first, then over
pruners, then over sparsity levels. Each program trains in its own workdir
``<sweep>/programs/<name>``, ``name = <algo>_<dataset>[_p<i>of<n>]_<hash>``
(the hash covers the program's whole config except the workdir).

Running. Programs are dealt round-robin to ``num_shards`` jobs in plan order;
all jobs share the sweep workdir. A job holds an exclusive ``fcntl.flock`` on
``<sweep>/locks/<name>.lock`` while it runs a program (the kernel drops it
when the job dies, SIGKILL included), and skips programs another job holds.
Finished programs (``summary.json`` complete) are skipped; unfinished ones
resume from their checkpoints (:func:`~sparse_orl.experiment.run_experiment`).
A corrupt ``summary.json`` is moved aside and rebuilt from the checkpoints.
``<sweep>/sweep.json`` records the grid; a different grid is refused.

Results. Once every program is complete, :func:`collect_results` writes one
tidy table, ``results.csv`` and ``results.jsonl`` (atomically): one row per
(run, evaluation) with :data:`BASE_COLUMNS` plus ``sparsity_<network>`` (the
actual fraction of prunable weights removed). Diverged runs are left out and
listed in ``diverged.json`` and the log.
"""
from __future__ import annotations

import csv
import dataclasses
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import re
import socket
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import jax
import numpy as np

from sparse_orl import pruning
from sparse_orl.config import AgentConfig, PruneConfig, canonical_prune_dict
from sparse_orl.experiment import ExperimentConfig, comparable_config, run_experiment
from sparse_orl.io_utils import atomic_write_json, atomic_write_text, read_json

SWEEP_FILE = "sweep.json"
SWEEP_VERSION = 1
NETWORK_ORDER = ("actor", "critic", "vae")
BASE_COLUMNS = ("algo", "vae_only", "pruner", "sparsity", "dataset", "env", "seed", "step", "returns", "return",
                "normalized_score")

Log = Callable[[str], None]


# ---- the grid ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """The grid of a sweep. Built from flags in ``launch/sweep.py`` only."""

    workdir: str
    datasets: Tuple[str, ...]
    agents: Tuple[AgentConfig, ...]  # one per algorithm (algo / vae_only set)
    prunes: Tuple[PruneConfig, ...]
    sparsities: Tuple[float, ...]
    seeds: Tuple[int, ...] = (0, 1, 2, 3, 4)
    steps: int = 1_000_000
    batch_size: int = 100
    eval_every: int = 5000
    eval_episodes: int = 10
    checkpoint_every: int = 10000
    eval_max_episode_steps: Optional[int] = None
    max_runs_per_program: Optional[int] = None  # None: no cap

    def validate(self) -> None:
        if not self.datasets:
            raise ValueError("--datasets is empty: give at least one dataset id")
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"--datasets has repeats: {list(self.datasets)}")
        if not self.agents:
            raise ValueError("--algos is empty: give at least one of bcq, bc")
        algos = [a.algo for a in self.agents]
        if len(set(algos)) != len(algos):
            raise ValueError(f"--algos has repeats: {algos}")
        if not self.prunes:
            raise ValueError("--pruners is empty: give at least one pruning method")
        labels = [p.label for p in self.prunes]
        if len(set(labels)) != len(labels):
            raise ValueError(f"--pruners has repeats: {labels}")
        if any(p.pruner != "none" for p in self.prunes):
            if not self.sparsities:
                raise ValueError("--sparsities is empty: give at least one level in [0, 1)")
            for s in self.sparsities:
                pruning.check_sparsity(s, "--sparsities")
            if len(set(self.sparsities)) != len(self.sparsities):
                raise ValueError(f"--sparsities has repeated levels: {list(self.sparsities)}")
        if self.max_runs_per_program is not None and int(self.max_runs_per_program) < 1:
            raise ValueError(f"--max_runs_per_program must be >= 1, got {self.max_runs_per_program}")
        if self.eval_max_episode_steps is not None and int(self.eval_max_episode_steps) < 1:
            raise ValueError(f"--eval_max_episode_steps must be >= 1, got {self.eval_max_episode_steps}")
        for p in plan(self):
            p.config.validate()

    def grid(self) -> Dict:
        """What ``sweep.json`` records: everything but the workdir."""
        d = json.loads(json.dumps(dataclasses.asdict(self)))
        d.pop("workdir")
        d["prunes"] = [canonical_prune_dict(p) for p in d["prunes"]]
        return d


@dataclasses.dataclass(frozen=True)
class Program:
    """One compiled program of a sweep: an ExperimentConfig and where it lives."""

    name: str
    index: int  # position in the plan (shards deal programs round-robin in this order)
    algo: str
    dataset: str
    config: ExperimentConfig

    @property
    def workdir(self) -> str:
        return self.config.workdir

    @property
    def num_runs(self) -> int:
        return len(self.config.runs)


def _slug(text: str) -> str:
    text = os.path.basename(text) if os.path.isfile(text) else text
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")[:60] or "dataset"


def algo_label(agent: AgentConfig) -> str:
    return "bc-vae" if agent.vae_only else agent.algo


def _chunks(seq: Sequence, size: int) -> List[Tuple]:
    return [tuple(seq[i:i + size]) for i in range(0, len(seq), size)]


def split_runs(prunes: Sequence[PruneConfig], seeds: Sequence[int], sparsities: Sequence[float],
               max_runs: Optional[int]) -> List[Tuple[Tuple[PruneConfig, ...], Tuple[int, ...], Tuple[float, ...]]]:
    """Split the runs of (prunes x seeds x sparsities; dense once per seed) into
    groups of at most ``max_runs`` runs, each a (prunes, seeds, sparsities) product.

    Seeds are split first; if one seed's runs still exceed the cap, its sparse
    pruners are grouped (all levels each), then levels are split; dense runs
    join the first group with room, or form their own.
    """
    prunes, seeds, sparsities = tuple(prunes), tuple(seeds), tuple(sparsities)
    dense = tuple(p for p in prunes if p.pruner == "none")
    sparse = tuple(p for p in prunes if p.pruner != "none")
    levels = sparsities if sparse else (0.0,)
    per_seed = len(dense) + len(sparse) * len(levels)
    if max_runs is None or per_seed * len(seeds) <= max_runs:
        return [(prunes, seeds, levels)]
    if per_seed <= max_runs:
        return [(prunes, group, levels) for group in _chunks(seeds, max_runs // per_seed)]
    out = []
    for seed in seeds:
        groups: List[List] = []  # [prunes, levels]
        if len(levels) <= max_runs:
            groups += [[list(g), levels] for g in _chunks(sparse, max_runs // len(levels))]
        else:
            groups += [[[p], lv] for p in sparse for lv in _chunks(levels, max_runs)]
        if dense:
            for g in groups:
                if len(g[0]) * len(g[1]) + len(dense) <= max_runs:
                    g[0] = list(dense) + g[0]
                    break
            else:
                groups.insert(0, [list(dense), (0.0,)])
        out += [(tuple(ps), (seed,), tuple(lv)) for ps, lv in groups]
    return out


def _existing_program(sweep_workdir: str, prefix: str, cfg: ExperimentConfig) -> Optional[str]:
    """Name of a program folder already in the sweep that holds ``cfg`` under another hash.

    Program names hash the config; a folder written by a version that hashed it
    differently (e.g. before a remedy option was added) is found by its
    ``config.json`` instead, so upgrading the library never restarts a sweep.
    """
    folder = os.path.join(sweep_workdir, "programs")
    if not sweep_workdir or not os.path.isdir(folder):
        return None
    want = comparable_config(cfg.to_dict())
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry, "config.json")
        if not entry.startswith(prefix) or not os.path.exists(path):
            continue
        try:
            if comparable_config(read_json(path, "program config")) == want:
                return entry
        except ValueError:
            continue
    return None


def plan(sweep: SweepConfig) -> List[Program]:
    """The programs of ``sweep``, in a stable order (algos, then datasets, then parts)."""
    programs: List[Program] = []
    for agent in sweep.agents:
        for dataset in sweep.datasets:
            parts = split_runs(sweep.prunes, sweep.seeds, sweep.sparsities, sweep.max_runs_per_program)
            for i, (prunes, seeds, levels) in enumerate(parts):
                cfg = ExperimentConfig(
                    dataset=dataset, workdir="", agent=agent, prunes=prunes, seeds=tuple(int(s) for s in seeds),
                    sparsities=tuple(float(s) for s in levels), steps=sweep.steps, batch_size=sweep.batch_size,
                    eval_every=sweep.eval_every, eval_episodes=sweep.eval_episodes,
                    checkpoint_every=sweep.checkpoint_every, eval_max_episode_steps=sweep.eval_max_episode_steps)
                body = comparable_config(cfg.to_dict())  # the hash ignores what resuming ignores
                digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:10]
                part = f"_p{i + 1}of{len(parts)}" if len(parts) > 1 else ""
                prefix = f"{algo_label(agent)}_{_slug(dataset)}{part}_"
                name = prefix + digest
                if sweep.workdir and not os.path.isdir(os.path.join(sweep.workdir, "programs", name)):
                    name = _existing_program(sweep.workdir, prefix, cfg) or name  # written under an older hash
                cfg = dataclasses.replace(cfg, workdir=os.path.join(sweep.workdir, "programs", name))
                programs.append(Program(name, len(programs), agent.algo, dataset, cfg))
    return programs


def shard(programs: Sequence[Program], num_shards: int, shard_index: int) -> List[Program]:
    """Programs of shard ``shard_index``: every ``num_shards``-th in plan order."""
    if num_shards < 1:
        raise ValueError(f"--num_shards must be >= 1, got {num_shards}")
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard_index must be in [0, {num_shards - 1}], got {shard_index}")
    return [p for p in programs if p.index % num_shards == shard_index]


# ---- sweep.json ------------------------------------------------------------------------
def check_sweep_workdir(sweep: SweepConfig, write: bool = True) -> bool:
    """Refuse a workdir that holds a different grid; record the grid if new.

    Returns True if ``sweep.json`` existed. With ``write=False`` nothing is written.
    """
    path = os.path.join(sweep.workdir, SWEEP_FILE)
    new = {"version": SWEEP_VERSION, "grid": sweep.grid()}
    if write:
        os.makedirs(sweep.workdir, exist_ok=True)
    lock = _FileLock(os.path.join(sweep.workdir, ".sweep.lock")) if write else None
    if lock is not None:
        lock.acquire(block=True)
    try:
        if os.path.exists(path):
            old = read_json(path, "sweep grid file")
            if isinstance(old, dict) and isinstance(old.get("grid"), dict) and isinstance(old["grid"].get("prunes"), list):
                old["grid"]["prunes"] = [canonical_prune_dict(p) if isinstance(p, dict) else p
                                         for p in old["grid"]["prunes"]]
            if old != new:
                og, ng = old.get("grid", {}) if isinstance(old, dict) else {}, new["grid"]
                diff = sorted(k for k in set(og) | set(ng) if og.get(k) != ng.get(k)) or ["version"]
                details = "; ".join(f"{k}: {_short(og.get(k))} -> {_short(ng.get(k))}" for k in diff)
                raise ValueError(f"--workdir={sweep.workdir} holds a different sweep ({details}). Use a new "
                                 "--workdir, or re-run the original command to resume.")
            return True
        if write:
            atomic_write_json(path, new)
        return False
    finally:
        if lock is not None:
            lock.release()


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def load_sweep(workdir: str) -> SweepConfig:
    """The :class:`SweepConfig` recorded in ``<workdir>/sweep.json``."""
    path = os.path.join(workdir, SWEEP_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir} is not a sweep workdir (no {SWEEP_FILE})")
    d = read_json(path, "sweep grid file")
    try:
        g = dict(d["grid"])
        agents = tuple(AgentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in a.items()})
                       for a in g.pop("agents"))
        prunes = tuple(PruneConfig(**p) for p in g.pop("prunes"))
        for k in ("datasets", "sparsities", "seeds"):
            g[k] = tuple(g[k])
        return SweepConfig(workdir=workdir, agents=agents, prunes=prunes, **g)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"sweep grid file {path} cannot be read ({type(e).__name__}: {e})") from None


# ---- locks -------------------------------------------------------------------------------
class _FileLock:
    """An exclusive ``fcntl.flock`` on a file; the kernel releases it when the process dies."""

    def __init__(self, path: str):
        self.path = path
        self._fd: Optional[int] = None

    def acquire(self, block: bool = False) -> bool:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        self._fd = fd
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        return True

    def holder(self) -> str:
        try:
            with open(self.path, "r", encoding="utf-8") as f:
                info = json.loads(f.read() or "{}")
            return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
        except (OSError, ValueError):
            return "another job"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def program_lock(sweep_workdir: str, name: str) -> _FileLock:
    """The lock of program ``name`` (call ``acquire()``; False means another job holds it)."""
    return _FileLock(os.path.join(sweep_workdir, "locks", name + ".lock"))


# ---- status --------------------------------------------------------------------------------
def checkpoint_steps(workdir: str) -> List[int]:
    folder = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    return sorted(int(n) for n in os.listdir(folder) if n.isdigit())


def program_status(program: Program) -> str:
    """"done", "partial" (started: checkpoints or an incomplete summary), "pending", or "corrupt"."""
    path = os.path.join(program.workdir, "summary.json")
    if os.path.exists(path):
        try:
            summary = read_json(path, "summary")
        except ValueError:
            return "corrupt"
        if summary.get("complete"):
            return "done"
        return "partial"
    return "partial" if checkpoint_steps(program.workdir) else "pending"


def _describe_runs(cfg: ExperimentConfig) -> str:
    parts = []
    for p in cfg.prunes:
        n_levels = 1 if p.pruner == "none" else len(cfg.sparsities)
        parts.append(p.label + ("" if p.pruner == "none" else f" x {n_levels} level" + "s" * (n_levels > 1)))
    seeds = ",".join(str(s) for s in cfg.seeds)
    return f"({' + '.join(parts)}) x seeds {seeds}"


_SKIP_DONE, _SKIP_LOCKED, _RUN = 0, 1, 2


def _silent(_message: str) -> None:
    pass


def _process0_decides(value: int) -> int:
    """Process 0's ``value`` on every process (the identity with one process). A collective."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def _claim(p: "Program", lock: "_FileLock", log: Log) -> int:
    """Whether this job runs program ``p``: skip it (done, or another job holds its lock) or
    run it, holding ``lock``. A corrupt ``summary.json`` is moved aside (rebuilt from checkpoints)."""
    if program_status(p) == "done":
        log(f"[{p.name}] complete; skipping")
        return _SKIP_DONE
    if not lock.acquire():
        log(f"[{p.name}] locked by {lock.holder()}; skipping (another job is running it)")
        return _SKIP_LOCKED
    status = program_status(p)  # again, under the lock: another job may have finished it
    if status == "done":
        lock.release()
        log(f"[{p.name}] complete; skipping")
        return _SKIP_DONE
    if status == "corrupt":
        bad = os.path.join(p.workdir, "summary.json")
        aside = f"{bad}.corrupt-{int(time.time())}"
        os.replace(bad, aside)
        log(f"[{p.name}] WARNING: summary.json was corrupt or truncated; moved to {aside}, "
            "rebuilding it from the checkpoints")
    return _RUN


# ---- running --------------------------------------------------------------------------------
def run_sweep(sweep: SweepConfig, num_shards: int = 1, shard_index: int = 0, log: Log = print,
              dry_run: bool = False, estimate: bool = True) -> Dict:
    """Run this shard's programs (or, with ``dry_run``, print the plan). Returns what happened:
    {"ran", "done", "locked"} program names and "results" (the results.csv path, or None)."""
    sweep.validate()
    programs = plan(sweep)
    mine = shard(programs, num_shards, shard_index)
    if dry_run:
        check_sweep_workdir(sweep, write=False)
        log(format_plan(sweep, programs, num_shards, shard_index,
                        estimate_programs(mine, log) if estimate and mine else None))
        return {"ran": [], "done": [], "locked": [], "results": None}
    # several processes (--distributed) run every program together: process 0 alone takes
    # the locks, writes and logs, and its decisions are broadcast so all processes agree
    main = jax.process_index() == 0
    if not main:
        log = _silent
    check_sweep_workdir(sweep, write=main)
    total_runs = sum(p.num_runs for p in programs)
    log(f"sweep {sweep.workdir}: {len(programs)} program(s), {total_runs} runs; shard {shard_index}/{num_shards} "
        f"has {len(mine)}")
    out = {"ran": [], "done": [], "locked": [], "results": None}
    for p in mine:
        lock = program_lock(sweep.workdir, p.name)
        decision = _SKIP_DONE
        if main:
            decision = _claim(p, lock, log)
        decision = _process0_decides(decision)
        if decision == _SKIP_DONE:
            out["done"].append(p.name)
            continue
        if decision == _SKIP_LOCKED:
            out["locked"].append(p.name)
            continue
        try:
            log(f"[{p.name}] {p.num_runs} runs {_describe_runs(p.config)}"
                + (f"; resuming (checkpoints at steps {checkpoint_steps(p.workdir)})"
                   if checkpoint_steps(p.workdir) else ""))
            run_experiment(p.config, log=lambda m, _n=p.name: log(f"[{_n}] {m}"))
            out["ran"].append(p.name)
        finally:
            lock.release()
    if not main:
        return out
    statuses = {p.name: program_status(p) for p in programs}
    unfinished = [n for n, s in statuses.items() if s != "done"]
    if unfinished:
        log(f"{len(programs) - len(unfinished)}/{len(programs)} programs complete; results.csv is written once "
            f"all are (unfinished: {', '.join(unfinished)}). Run the other shards, or re-run this command.")
    else:
        res = collect_results(sweep.workdir, log=log)
        out["results"] = res["csv"]
    return out


# ---- estimates --------------------------------------------------------------------------------
def _fmt_time(seconds: float) -> str:
    if seconds < 10:
        return f"{max(seconds, 0):.1f}s"
    seconds = int(round(seconds))
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d{h:02d}h{m:02d}m"
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _fmt_bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


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
    import jax
    import jax.numpy as jnp
    import numpy as np

    from sparse_orl.algos import make_agent
    from sparse_orl.data import load_dataset, to_device
    from sparse_orl.training import init_runs, make_train_chunk

    cache: Dict[Tuple, Dict] = {}
    out: Dict[str, Dict] = {}
    devices = jax.devices()
    for p in programs:
        cfg = p.config
        key = (cfg.agent, cfg.dataset, cfg.batch_size)
        if key not in cache:
            log(f"timing {algo_label(cfg.agent)} on {cfg.dataset} (batch {cfg.batch_size}) ...")
            transitions, info = load_dataset(cfg.dataset)
            agent = make_agent(cfg.agent, info.obs_dim, info.act_dim, info.max_action)
            data = jax.device_put(to_device(transitions))
            data_bytes = sum(np.asarray(x).nbytes for x in jax.tree_util.tree_leaves(transitions))
            dense = dataclasses.replace(cfg.prunes[0], pruner="none")
            # shapes of one dense run, filled with zeros (params) and ones (masks): the same work per
            # step as a real run, without compiling the pruning at init
            shapes = jax.eval_shape(lambda d: init_runs(agent, dense, d, [0], [0.0]), data)
            state = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
            state = state.replace(agent=state.agent.replace(masks=jax.tree_util.tree_map(jnp.ones_like,
                                                                                         state.agent.masks)),
                                  nan_step=jnp.full_like(state.nan_step, -1))
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
            env_step = None
            if cfg.eval_episodes and info.env_id:
                try:
                    from sparse_orl import evaluation

                    env = evaluation.make_env(info.env_id)
                    env.reset(seed=0)
                    env.action_space.seed(0)
                    t0, k = time.time(), 0
                    while k < 200:
                        _, _, term, trunc, _ = env.step(env.action_space.sample())
                        k += 1
                        if term or trunc:
                            env.reset()
                    env_step = (time.time() - t0) / k
                    env.close()
                except Exception as e:  # noqa: BLE001
                    log(f"  (could not time env {info.env_id}: {e})")
            cache[key] = dict(sps=sps, compile_s=compile_s, data_bytes=data_bytes, state_bytes=state_bytes,
                              temp_bytes=temp, env_step=env_step)
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
        out["_note"] = {"devices": f"{len(devices)} x {devices[0].device_kind} ({devices[0].platform})"}
    return out


def format_plan(sweep: SweepConfig, programs: Sequence[Program], num_shards: int = 1, shard_index: int = 0,
                estimates: Optional[Dict[str, Dict]] = None) -> str:
    """The dry-run text: every program, its runs, shard, status and (if given) estimates."""
    lines = []
    total = sum(p.num_runs for p in programs)
    lines.append(f"sweep {sweep.workdir}: {len(programs)} program(s), {total} runs, {sweep.steps} steps each "
                 f"(eval every {sweep.eval_every} x {sweep.eval_episodes} episodes, checkpoint every "
                 f"{sweep.checkpoint_every}); max_runs_per_program={sweep.max_runs_per_program}")
    lines.append(f"this job: shard {shard_index} of {num_shards} (programs with index % {num_shards} == "
                 f"{shard_index})")
    header = f"{'#':>3} {'shard':>5} {'runs':>4}  {'status':<8} {'est. time':>10} {'est. memory':>11}  program"
    lines.append(header)
    tot_t, tot_m = 0.0, 0.0
    for p in programs:
        e = (estimates or {}).get(p.name)
        t = _fmt_time(e["time_s"]) if e else "-"
        m = _fmt_bytes(e["memory_bytes"]) if e else "-"
        if e:
            tot_t += e["time_s"]
            tot_m = max(tot_m, e["memory_bytes"])
        lines.append(f"{p.index:>3} {p.index % num_shards:>5} {p.num_runs:>4}  {program_status(p):<8} {t:>10} "
                     f"{m:>11}  {p.name}")
        lines.append(f"{'':>49}  {algo_label(p.config.agent)} on {p.dataset}: {_describe_runs(p.config)}")
        if e:
            lines.append(f"{'':>49}  time = compile {_fmt_time(e['compile_s'])} + train {_fmt_time(e['train_s'])} "
                         f"({e['sps']:.0f} steps/s per run measured) + eval <= {_fmt_time(e['eval_s'])}")
    if estimates:
        note = estimates.get("_note", {})
        lines.append(
            f"ESTIMATES for this shard's programs (rough): {_fmt_time(tot_t)} in total run one after another, peak "
            f"device memory ~{_fmt_bytes(tot_m)} (one program at a time). Measured on {note.get('devices')} "
            f"with XLA's default thread settings, one run of a 50-step chunk at a time; time assumes cost linear in runs per device (right on a CPU, "
            "pessimistic on a GPU); evaluation counted at full episode length (an upper bound); memory = dataset "
            "+ runs x (train state + XLA temporaries of one run); host memory also holds the dataset. Other load "
            "on this machine skews the timing.")
    return "\n".join(lines)


# ---- results ---------------------------------------------------------------------------------
def rows_from_summary(summary: Dict, program: str = "") -> Tuple[List[Dict], List[Dict]]:
    """Tidy rows (one per run and evaluation) of one summary, and the diverged runs."""
    cfg = summary.get("config", {})
    agent = cfg.get("agent", {})
    rows, diverged = [], []
    for run in summary.get("runs", []):
        ident = {"algo": agent.get("algo"), "vae_only": bool(agent.get("vae_only", False)),
                 "pruner": run["pruner"], "sparsity": float(run["sparsity"]), "dataset": cfg.get("dataset"),
                 "env": summary.get("env_id"), "seed": int(run["seed"])}
        if run.get("status") == "diverged":
            diverged.append(dict(ident, nan_step=run.get("nan_step"), program=program))
            continue
        nets = {f"sparsity_{net}": float(rep["sparsity"]) for net, rep in run.get("masks", {}).items()}
        for e in run.get("evals", []):
            rows.append(dict(ident, step=int(e["step"]), returns=[float(x) for x in e["returns"]],
                             **{"return": float(e["return"])}, normalized_score=e.get("normalized_score"),
                             **nets, program=program))
    return rows, diverged


def columns_of(rows: Sequence[Dict]) -> List[str]:
    nets = {k for r in rows for k in r if k.startswith("sparsity_")}
    order = [f"sparsity_{n}" for n in NETWORK_ORDER if f"sparsity_{n}" in nets]
    order += sorted(nets - set(order))
    return list(BASE_COLUMNS) + order + ["program"]


def _sort_key(r: Dict):
    return (r["algo"], r["vae_only"], r["dataset"], r["pruner"], r["sparsity"], r["seed"], r["step"])


def collect_results(sweep_workdir: str, log: Log = print, write: bool = True,
                    allow_incomplete: bool = False) -> Dict:
    """One tidy table from every program's ``summary.json``.

    Returns {"rows", "columns", "diverged", "unfinished", "csv", "jsonl"}. With
    ``write``, writes ``results.csv``, ``results.jsonl`` and ``diverged.json``
    atomically. Unfinished programs raise ``ValueError`` unless
    ``allow_incomplete`` (then they are left out and listed). A corrupt summary
    raises ``ValueError`` naming the file.
    """
    sweep = load_sweep(sweep_workdir)
    rows, diverged, unfinished = [], [], []
    for p in plan(sweep):
        path = os.path.join(p.workdir, "summary.json")
        summary = read_json(path, "summary") if os.path.exists(path) else None
        if summary is None or not summary.get("complete"):
            unfinished.append(p.name)
            continue
        r, d = rows_from_summary(summary, p.name)
        rows += r
        diverged += d
    if unfinished and not allow_incomplete:
        raise ValueError(f"{len(unfinished)} program(s) of {sweep_workdir} are not finished: "
                         f"{', '.join(unfinished)}; run (or resume) the sweep first")
    rows.sort(key=_sort_key)
    columns = columns_of(rows)
    rows = [{c: r.get(c) for c in columns} for r in rows]
    if diverged:
        log(f"excluded {len(diverged)} diverged run(s): " + "; ".join(
            f"{d['algo']} {d['pruner']} sparsity {d['sparsity']} seed {d['seed']} on {d['dataset']} "
            f"(non-finite loss at step {d['nan_step']})" for d in diverged))
    out = {"rows": rows, "columns": columns, "diverged": diverged, "unfinished": unfinished,
           "csv": None, "jsonl": None}
    if write:
        out["csv"] = os.path.join(sweep_workdir, "results.csv")
        out["jsonl"] = os.path.join(sweep_workdir, "results.jsonl")
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r[c] is None else json.dumps(r[c]) if isinstance(r[c], list)
                        else repr(r[c]) if isinstance(r[c], float) else r[c] for c in columns])
        atomic_write_text(out["csv"], buf.getvalue())
        atomic_write_text(out["jsonl"], "".join(json.dumps(r) + "\n" for r in rows))
        atomic_write_json(os.path.join(sweep_workdir, "diverged.json"), diverged)
        log(f"results: {len(rows)} rows -> {out['csv']}, {out['jsonl']}")
    return out


def load_results(sweep_workdir: str) -> List[Dict]:
    """Rows of ``results.jsonl``, read strictly: a truncated or corrupt file raises
    ``ValueError`` naming it (re-run the sweep command to rewrite it from the summaries)."""
    path = os.path.join(sweep_workdir, "results.jsonl")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no results in {sweep_workdir} (results.jsonl missing; has the sweep finished?)")
    rows = []
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        raise ValueError(f"results file {path} is truncated (no newline at the end); re-run the sweep command "
                         "to rewrite it from the programs' summaries")
    for i, line in enumerate(text.splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"results file {path} is corrupt at line {i} ({e}); re-run the sweep command to "
                             "rewrite it from the programs' summaries") from None
        if not isinstance(row, dict) or not set(BASE_COLUMNS) <= set(row):
            raise ValueError(f"results file {path} is corrupt at line {i} (not a results row)")
        rows.append(row)
    return rows
