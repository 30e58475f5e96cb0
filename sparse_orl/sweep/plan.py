"""A sweep's grid and its plan: which compiled programs train which runs, and ``sweep.json``.

Runs that share shapes (same agent config and dataset) go into one
:class:`~sparse_orl.job.run.ExperimentConfig` -- one compiled program with
every (pruner, seed, sparsity) run vmapped; dense ("none") runs once per seed.
``max_runs_per_program`` splits a program over seeds first, then over
pruners, then over sparsity levels (:func:`split_runs`). Each program trains in
its own workdir ``<sweep>/programs/<name>``, ``name = <algo>_<dataset>[_p<i>of<n>]_<hash>``
(the hash covers the program's whole config except the workdir). Programs are
dealt round-robin to shards in plan order (:func:`shard`). ``<sweep>/sweep.json``
records the grid; a different grid on the same workdir is refused
(:func:`check_sweep_workdir`). :func:`format_plan` is the ``--dry_run`` text.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

from sparse_orl.algos import AlgoConfig
from sparse_orl.config import ExperimentConfig, PruneConfig, RunSettings, comparable_config
from sparse_orl.store.atomic import read_json
from sparse_orl.sweep.status import program_status
from sparse_orl.text import fmt_bytes, fmt_time, slug



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


def algo_label(agent: AlgoConfig) -> str:
    """The algorithm's name in program names and results ("bcq", "bc-vae", ...)."""
    return agent.label


def _dataset_slug(dataset: str) -> str:
    """A dataset id (or, for a D4RL .hdf5 path, its file name) as a program-name piece."""
    return slug(os.path.basename(dataset) if os.path.isfile(dataset) else dataset, default="dataset")


def describe_runs(cfg: ExperimentConfig) -> str:
    """ "(none + snip x 2 levels) x seeds 0,1" """
    parts = []
    for p in cfg.prunes:
        n_levels = 1 if p.is_dense else len(cfg.sparsities)
        parts.append(p.label + ("" if p.is_dense else f" x {n_levels} level" + "s" * (n_levels > 1)))
    seeds = ",".join(str(s) for s in cfg.seeds)
    return f"({' + '.join(parts)}) x seeds {seeds}"


# ---- planning ------------------------------------------------------------------------
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
    dense = tuple(p for p in prunes if p.is_dense)
    sparse = tuple(p for p in prunes if not p.is_dense)
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


def plan(sweep) -> List[Program]:
    """The programs of ``sweep``, in a stable order (algos, then datasets, then parts)."""
    programs: List[Program] = []
    for agent in sweep.agents:
        for dataset in sweep.datasets:
            parts = split_runs(sweep.prunes, sweep.seeds, sweep.sparsities, sweep.max_runs_per_program)
            for i, (prunes, seeds, levels) in enumerate(parts):
                cfg = ExperimentConfig(
                    dataset=dataset, workdir="", agent=agent, prunes=prunes, seeds=tuple(int(s) for s in seeds),
                    sparsities=tuple(float(s) for s in levels),
                    **{f.name: getattr(sweep, f.name) for f in dataclasses.fields(RunSettings)})
                body = comparable_config(cfg.to_dict())  # the hash ignores what resuming ignores
                digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:10]
                part = f"_p{i + 1}of{len(parts)}" if len(parts) > 1 else ""
                prefix = f"{algo_label(agent)}_{_dataset_slug(dataset)}{part}_"
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
# ---- the dry-run text ---------------------------------------------------------------------
def format_plan(sweep, programs: Sequence[Program], num_shards: int = 1, shard_index: int = 0,
                estimates: Optional[Dict[str, Dict]] = None) -> str:
    """The dry-run text: every program, its runs, shard, status and (if given) estimates
    (:func:`sparse_orl.sweep.estimate.estimate_programs`)."""
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
        t = fmt_time(e["time_s"]) if e else "-"
        m = fmt_bytes(e["memory_bytes"]) if e else "-"
        if e:
            tot_t += e["time_s"]
            tot_m = max(tot_m, e["memory_bytes"])
        lines.append(f"{p.index:>3} {p.index % num_shards:>5} {p.num_runs:>4}  {program_status(p):<8} {t:>10} "
                     f"{m:>11}  {p.name}")
        lines.append(f"{'':>49}  {algo_label(p.config.agent)} on {p.dataset}: {describe_runs(p.config)}")
        if e:
            lines.append(f"{'':>49}  time = compile {fmt_time(e['compile_s'])} + train {fmt_time(e['train_s'])} "
                         f"({e['sps']:.0f} steps/s per run measured) + eval <= {fmt_time(e['eval_s'])}")
    if estimates:
        note = estimates.get("_note", {})
        lines.append(
            f"ESTIMATES for this shard's programs (rough): {fmt_time(tot_t)} in total run one after another, peak "
            f"device memory ~{fmt_bytes(tot_m)} (one program at a time). Measured on {note.get('devices')} "
            f"with XLA's default thread settings, one run of a 50-step chunk at a time; time assumes cost linear in "
            "runs per device (right on a CPU, "
            "pessimistic on a GPU); evaluation counted at full episode length (an upper bound); memory = dataset "
            "+ runs x (train state + XLA temporaries of one run); host memory also holds the dataset. Other load "
            "on this machine skews the timing.")
        if estimates.get("_missing"):
            lines.append(f"MISSING DATASETS (not on disk; estimated from their environments' spaces): "
                         f"{', '.join(estimates['_missing'])}")
    return "\n".join(lines)
