"""The final params of every run (``final/params.npz`` + ``final/runs.json``), and finding a run in any
finished workdir: one program, or several (the narrow control's ``programs/``).

numpy and the standard library (jax for the pytree maps).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import jax
import numpy as np

from sparse_orl.store.atomic import atomic_write_json, atomic_write_npz, flatten, read_json, unflatten
from sparse_orl.store.summary import read_summary
from sparse_orl.config.prune import PruneConfig


def save_final(workdir: str, runs: List[Dict], params, masks, obs_mean, obs_std, agent_config: Dict) -> str:
    """Write ``final/params.npz`` (every run's params, masks, observation statistics)
    and ``final/runs.json`` (run index -> seed, sparsity, pruner; agent config)."""
    final = os.path.join(workdir, "final")
    arrays: Dict[str, np.ndarray] = {}
    for i in range(len(runs)):
        take = lambda t: jax.tree_util.tree_map(lambda x: np.asarray(x)[i], t)
        arrays.update(flatten(take(params), f"run{i}/params"))
        # masks are 0/1: stored as booleans (a quarter of float32's bytes); loaded back as float32
        arrays.update({k: v != 0 for k, v in flatten(take(masks), f"run{i}/masks").items()})
        arrays[f"run{i}/obs_mean"] = np.asarray(obs_mean)[i]
        arrays[f"run{i}/obs_std"] = np.asarray(obs_std)[i]
    atomic_write_npz(os.path.join(final, "params.npz"), arrays)
    atomic_write_json(os.path.join(final, "runs.json"), {"agent_config": agent_config, "runs": runs})
    return final


def load_final(workdir: str) -> Tuple[Dict, List[Dict]]:
    """Load what :func:`save_final` wrote.

    Returns ``(agent_config_dict, runs)`` where each run is a dict with "seed",
    "sparsity", "pruner", "params", "masks" (nested dicts of numpy arrays),
    "obs_mean" and "obs_std".
    """
    final = os.path.join(workdir, "final")
    path = os.path.join(final, "params.npz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no final params in {final} (has the run finished?)")
    meta = read_json(os.path.join(final, "runs.json"), "final runs file")
    try:
        with np.load(path) as z:
            flat = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"final params file {path} is corrupt or truncated ({e})") from None
    tree = unflatten(flat)
    runs = []
    for i, r in enumerate(meta["runs"]):
        node = tree[f"run{i}"]
        masks = jax.tree_util.tree_map(lambda m: np.asarray(m, np.float32), node["masks"])
        runs.append(dict(r, params=node["params"], masks=masks,
                         obs_mean=node["obs_mean"], obs_std=node["obs_std"]))
    return meta["agent_config"], runs


def run_folders(workdir: str) -> List[Tuple[str, int, Dict]]:
    """Every run of a finished workdir as (folder holding its final params, index there, its
    {"seed", "sparsity", "pruner"}), in the order of the workdir's summary (several programs: their
    runs in turn). ``FileNotFoundError`` if the workdir has no final params (not finished)."""
    summary = read_summary(workdir)
    folders = [workdir]
    if summary is not None and summary.programs:
        folders = [os.path.join(workdir, p) for p in summary.programs.values()]
    out = []
    for folder in folders:
        path = os.path.join(folder, "final", "runs.json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"no final params in {workdir} (has the run finished? "
                                    f"{os.path.relpath(path, workdir)} is missing)")
        for i, r in enumerate(read_json(path, "final runs file")["runs"]):
            out.append((folder, i, r))
    return out


def select_run(workdir: str, run: Optional[int] = None, pruner: Optional[str] = None,
               sparsity: Optional[float] = None, seed: Optional[int] = None) -> Tuple[str, int, Dict]:
    """The one run of ``workdir`` chosen by its index in the summary, or by (pruner, sparsity, seed)
    (each optional, at least enough to single one out); ``ValueError`` listing the runs otherwise."""
    runs = run_folders(workdir)
    listing = "; ".join(f"{i}: {r['pruner']} {r['sparsity']:g} seed {r['seed']}" for i, (_, _, r) in enumerate(runs))
    if run is not None:
        if pruner is not None or sparsity is not None or seed is not None:
            raise ValueError("choose a run by its index or by pruner / sparsity / seed, not both")
        if not 0 <= run < len(runs):
            raise ValueError(f"run {run} out of range: {workdir} holds {len(runs)} runs ({listing})")
        return runs[run]

    def same_method(label):  # the name the user typed (erk_random, none) or the label printed
        if pruner is None:
            return True
        if label == pruner:
            return True
        try:
            return PruneConfig(pruner=pruner).label == label
        except ValueError:
            return False

    hits = [x for x in runs if same_method(x[2]["pruner"])
            and (sparsity is None or abs(float(x[2]["sparsity"]) - float(sparsity)) < 1e-9)
            and (seed is None or int(x[2]["seed"]) == int(seed))]
    if len(hits) != 1:
        what = "no run" if not hits else f"{len(hits)} runs"
        raise ValueError(f"{what} of {workdir} match pruner={pruner} sparsity={sparsity} seed={seed}; its runs are "
                         f"{listing}")
    return hits[0]
