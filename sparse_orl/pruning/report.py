"""Per-layer report of what a mask keeps, with loud warnings for collapsed layers."""
from __future__ import annotations

from typing import Dict, Optional

import jax
import numpy as np
from absl import logging

from sparse_orl.pruning.masks import Prunable, prunable_flags


def layer_name(path) -> str:
    """'l2', 'd1', 'mean' ... of a kernel's tree path (drops params / net and the final kernel)."""
    parts = []
    for k in path:
        key = getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))
        parts.append(str(key))
    if parts and parts[-1] == "kernel":
        parts = parts[:-1]
    return "/".join(p for p in parts if p not in ("params", "net"))


def layer_report(masks, *, prunable: Optional[Prunable] = None) -> Dict:
    """{"sparsity": removed/total, "kept", "total", "layers": {name: {"kept", "total"}}} for one network.

    Only prunable leaves are counted (ndim >= 2, or those selected by
    ``prunable(path, leaf)``). Layers left with zero weights are listed under
    "collapsed_layers".
    """
    layers = {}
    flags = prunable_flags(masks, prunable)
    for (path, m), f in zip(jax.tree_util.tree_flatten_with_path(masks)[0], flags):
        if not f:
            continue
        m = np.asarray(m)
        layers[layer_name(path)] = {"kept": int(np.count_nonzero(m)), "total": int(m.size)}
    kept = sum(v["kept"] for v in layers.values())
    total = sum(v["total"] for v in layers.values())
    return {
        "sparsity": (1.0 - kept / total) if total else 0.0,
        "kept": kept,
        "total": total,
        "layers": layers,
        "collapsed_layers": [k for k, v in layers.items() if v["kept"] == 0],
    }


def masks_report(masks_by_network: Dict, warn: bool = True, context: str = "", *,
                 prunable: Optional[Prunable] = None) -> Dict:
    """:func:`layer_report` for each network; logs a warning for every collapsed layer."""
    out = {name: layer_report(m, prunable=prunable) for name, m in masks_by_network.items()}
    if warn:
        for name, rep in out.items():
            for layer in rep["collapsed_layers"]:
                logging.warning(
                    "LAYER COLLAPSE%s: network %r layer %r kept 0 of %d weights; "
                    "the network is disconnected",
                    f" ({context})" if context else "", name, layer, rep["layers"][layer]["total"],
                )
    return out


def format_report(report: Dict) -> str:
    """Human-readable table of a :func:`masks_report`."""
    lines = []
    for name, rep in report.items():
        lines.append(f"{name}: sparsity {rep['sparsity']:.4f} ({rep['kept']}/{rep['total']} kept)")
        for layer, v in rep["layers"].items():
            flag = "  <-- COLLAPSED" if v["kept"] == 0 else ""
            lines.append(
                f"  {layer:<12s} {v['kept']:>9d}/{v['total']:<9d} {v['kept'] / v['total']:7.2%}{flag}"
            )
    return "\n".join(lines)
