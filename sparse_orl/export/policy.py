"""A trained run exported as one deployable file (:mod:`sparse_orl.export.codec`'s compact format),
from any finished workdir, and the run's policy loaded back.

The file holds the networks acting reads, their masks, the agent config, the acting program, the
run's identity and its observation statistics; :class:`sparse_orl.deploy.Policy` (numpy only)
loads it.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from sparse_orl.export.codec import save_compact
from sparse_orl.store.final import load_final, select_run
from sparse_orl.algos import algorithm_from_dict


def acting_networks(agent_config: Dict) -> Tuple[str, ...]:
    """Param paths a policy needs to act (``Algorithm.acting_networks`` of the config's algorithm)."""

    return tuple(algorithm_from_dict(agent_config).acting_networks)


def _program_layers(program: Dict, net: str):
    """Layer letters of ``net`` that the acting program's MLPs read directly ("d" of "vae")."""
    out = set()
    for op in program["ops"]:
        if op["op"] == "mlp" and op["net"] == net:
            out.add(op["layer"])
    return out


def export_run(workdir: str, run: Optional[int] = None, out_path: Optional[str] = None, *,
               pruner: Optional[str] = None, sparsity: Optional[float] = None, seed: Optional[int] = None,
               include_q2: bool = False, acting_only: bool = True, value_dtype: str = "float32") -> int:
    """Write one run of a finished ``workdir`` as a compact file at ``out_path``; returns its bytes.

    The run: its index in the workdir's summary (``run``), or its ``pruner`` / ``sparsity`` /
    ``seed`` (:func:`sparse_orl.store.final.select_run`); any finished workdir, with several
    programs (the narrow control) too. The file holds the networks acting reads (BC: the VAE;
    BCQ: actor, critic Q1 and, with ``include_q2``, Q2, VAE; TD3+BC / IQL: the actor) and their
    masks, the agent config (with obs_dim, act_dim, max_action, env_id), the acting program, the
    run's seed / sparsity / pruner and the observation statistics. ``acting_only`` (default) keeps
    only the layers the acting program reads (a VAE's decoder, not its encoder).
    """

    if out_path is None:
        raise ValueError("out_path is required: where to write the compact file")
    folder, index, _ = select_run(workdir, run, pruner, sparsity, seed)
    config, runs = load_final(folder)
    algo = algorithm_from_dict(config)
    program = algo.acting_program()
    chosen = runs[index]
    params, masks = {}, {}
    wanted = list(algo.acting_networks)
    if include_q2 and "critic/q1" in wanted:
        wanted.append("critic/q2")
    for path in wanted:
        src_p, src_m, dst_p, dst_m = chosen["params"], chosen["masks"], params, masks
        parts = path.split("/")
        for part in parts[:-1]:
            src_p, src_m = src_p[part], src_m[part]
            dst_p, dst_m = dst_p.setdefault(part, {}), dst_m.setdefault(part, {})
        leaf_p, leaf_m = src_p[parts[-1]], src_m[parts[-1]]
        used = _program_layers(program, path)
        if acting_only and used and all(k[:1].isalpha() for k in leaf_p):
            leaf_p = {k: v for k, v in leaf_p.items() if k.rstrip("0123456789") in used}
            leaf_m = {k: leaf_m[k] for k in leaf_p}
        to32 = lambda t: {k: to32(v) for k, v in t.items()} if isinstance(t, dict) else np.asarray(t, np.float32)
        dst_p[parts[-1]], dst_m[parts[-1]] = to32(leaf_p), to32(leaf_m)
    meta = {"kind": "sparse_orl.policy", "config": config, "acting": program,
            "run": {k: v for k, v in chosen.items() if k not in ("params", "masks", "obs_mean", "obs_std")},
            "obs_mean": np.asarray(chosen["obs_mean"], np.float32), "obs_std": np.asarray(chosen["obs_std"], np.float32)}
    return save_compact(out_path, params, masks, meta, value_dtype)
