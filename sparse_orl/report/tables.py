"""The report's Markdown tables: scores, the sparse-versus-narrow verdict, the aggregate over datasets,
training speed, stored size.

Every score is a run's mean normalized score over its last evaluations; every cell is mean ± sample
std [95% bootstrap interval] over seeds (:mod:`sparse_orl.report.stats`).
"""
from __future__ import annotations

import collections
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sparse_orl.report import stats
from sparse_orl.report.data import MB, budget_key, budget_text, final_scores, nearest_level, pct, pruner_name, size_summary

WEIGHT_MATCH = 0.10  # a narrow network "has the same weights" as a sparse one within this relative difference


def _order(k) -> Tuple:
    """Dense first, then the methods by name, then sparsity."""
    return (k[0], k[1], k[2], k[3] != "dense", k[3] == "narrow", k[3], k[4])


def score_table(rows: Sequence[Dict]) -> List[str]:
    """One row per configuration: seeds, the last step, mean ± std [95% CI], min and max over seeds."""
    finals = final_scores(rows)
    last_step: Dict = {}
    for r in rows:
        k = (r["algo"], r["algo_name"], r["data"], r["pruner"], r["sparsity"])
        last_step[k] = max(last_step.get(k, 0), r["step"])
    lines = ["| algorithm | data | method | sparsity | seeds | step | score: mean ± std [95% CI] | min | max |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for k in sorted(finals, key=_order):
        vals = list(finals[k].values())
        lines.append(f"| {k[1]} | {k[2]} | {pruner_name(k[3])} | {pct(k[4])} | {len(vals)} | {last_step[k]:,} | "
                     f"{stats.cell(vals).text()} | {min(vals):.1f} | {max(vals):.1f} |")
    return lines


def _kept(rows: Sequence[Dict]) -> Dict[Tuple, float]:
    """{(algo, algo_name, data, pruner, sparsity): mean kernel weights trained per run}."""
    acc = collections.defaultdict(list)
    for r in rows:
        if r.get("weights_kept") is not None:
            acc[(r["algo"], r["algo_name"], r["data"], r["pruner"], r["sparsity"])].append(r["weights_kept"])
    return {k: float(np.mean(v)) for k, v in acc.items()}


def matched_narrow(key: Tuple, kept: Dict[Tuple, float]) -> Optional[Tuple]:
    """The narrow configuration whose weight count is closest to ``key``'s (same algorithm and data),
    within :data:`WEIGHT_MATCH`; the same sparsity label wins a tie."""
    if key not in kept:
        return None
    cands = [k for k in kept if k[:3] == key[:3] and k[3] == "narrow"]
    if not cands:
        return None
    best = min(cands, key=lambda k: (abs(kept[k] / kept[key] - 1), k[4] != key[4]))
    return best if abs(kept[best] / kept[key] - 1) <= WEIGHT_MATCH else None


def _versus(finals: Dict, ref, k, name: str, missing: str) -> str:
    """The table cells of sparse configuration ``k`` against ``ref``: its cell, the paired difference
    and the verdict (``missing`` when there is no ``ref``)."""
    if ref is None:
        return missing
    diff = stats.difference(finals[ref], finals[k])
    return f"{stats.cell(list(finals[ref].values())).text()} | {diff.text()} | {diff.verdict('sparse', name)} | "


def verdict_table(rows: Sequence[Dict]) -> List[str]:
    """Each sparse configuration against the narrow dense network with the same weight count (and the full
    dense network): the paired difference with its 95% Student-t interval, and what the interval allows saying."""
    finals, kept = final_scores(rows), _kept(rows)
    lines = ["| algorithm | data | sparse method | sparsity | weights | sparse | narrow, same weights | "
             "sparse − narrow [95% CI] | verdict | dense | sparse − dense [95% CI] | verdict |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|"]
    for k in sorted(finals, key=_order):
        if k[3] == "narrow" or k[3].split(" ×")[0] == "dense":  # the references; a widened dense one too
            continue
        n = matched_narrow(k, kept)
        dense = next((d for d in finals if d[:3] == k[:3] and d[3] == "dense"), None)
        sparse_cell = stats.cell(list(finals[k].values()))
        row = f"| {k[1]} | {k[2]} | {pruner_name(k[3])} | {pct(k[4])} | {kept.get(k, float('nan')):,.0f} | " \
              f"{sparse_cell.text()} | "
        row += _versus(finals, n, k, "narrow", "— | — | no narrow network with the same weights | ")
        row += _versus(finals, dense, k, "dense", "— | — | — | ")
        lines.append(row.rstrip())
    return lines if len(lines) > 2 else []


def aggregate_table(rows: Sequence[Dict]) -> List[str]:
    """Each configuration that ran on two or more datasets, aggregated over them (rliable's convention):
    the IQM of every run score with a 95% bootstrap interval stratified by dataset. On each dataset only
    the seeds every configuration there has count, so no configuration weighs a dataset more than another."""
    where = {r["data"]: (r["dataset"], (r.get("max_transitions"), r.get("data_subset") or "uniform")) for r in rows}
    finals = final_scores(rows)
    common: Dict[Tuple, set] = {}
    for (algo, _name, data, _p, _s), by_seed in finals.items():
        common[(algo, data)] = common.get((algo, data), set(by_seed)) & set(by_seed)
    tasks: Dict[Tuple, Dict[str, List[float]]] = collections.defaultdict(dict)
    for (algo, name, data, pruner, sparsity), by_seed in finals.items():
        dataset, budget = where[data]
        tasks[(algo, name, budget, pruner, sparsity)][dataset] = [by_seed[s] for s in sorted(common[(algo, data)])]
    lines = ["| algorithm | data budget | method | sparsity | datasets | runs | IQM [95% CI] |",
             "|---|---|---|---:|---:|---:|---:|"]
    order = sorted((k for k in tasks if len(tasks[k]) > 1),
                   key=lambda k: (k[0], budget_key(k[2]), k[3] != "dense", k[3] == "narrow", k[3], k[4]))
    for k in order:
        c = stats.iqm_cell(list(tasks[k].values()))
        ci = f" [{c.low:.1f}, {c.high:.1f}]" if c.low is not None else ""
        lines.append(f"| {k[1]} | {budget_text(*k[2])} | {pruner_name(k[3])} | {pct(k[4])} | {len(tasks[k])} | {c.n} | "
                     f"{c.mean:.1f}{ci} |")
    return lines if len(lines) > 2 else []


def speed_table(rows: Sequence[Dict]) -> List[str]:
    """Training throughput per configuration in one unit for every row: run-steps per second of its
    program (its per-run steps/s times its runs; on a CPU the runs take turns), with the run count and
    the weights trained."""
    seen = collections.defaultdict(list)
    for r in rows:
        sps, n = r.get("train_steps_per_s"), r.get("program_runs")
        k = (r["algo_name"], r["data"], r["pruner"], r["sparsity"])
        seen[k].append((r.get("weights_kept"), None if sps is None or n is None else sps * n, n))
    lines = ["| algorithm | data | method | sparsity | weights trained | run-steps/s of its program | runs in it |",
             "|---|---|---|---:|---:|---:|---:|"]
    for k in sorted(seen, key=lambda k: (k[0], k[1], k[2] != "dense", k[2], k[3])):
        kept = [v[0] for v in seen[k] if v[0] is not None]
        agg = [v[1] for v in seen[k] if v[1] is not None]
        runs = seen[k][0][2]
        lines.append(f"| {k[0]} | {k[1]} | {pruner_name(k[2])} | {pct(k[3])} | "
                     + (f"{int(np.mean(kept)):,}" if kept else "n/a") + " | "
                     + (f"{np.mean(agg):,.0f}" if agg else "n/a") + f" | {runs if runs else 'n/a'} |")
    return lines


def storage_table(sizes: Sequence[Dict], networks: Dict[str, str], sparsity: float = 0.95
                  ) -> Tuple[List[str], Optional[float]]:
    """Table 1: stored MB per network at the level nearest ``sparsity`` (dense, torch COO, ours)."""
    table = size_summary(sizes)
    level = nearest_level([k[4] for k in table], sparsity)
    if level is None:
        return ["(no sparse runs with final params)"], None
    lines = ["| algorithm | data | network | params | kept weights | dense MB | torch COO MB | ours MB | "
             "dense / COO | dense / ours |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k in sorted((k for k in table if k[4] == level),
                    key=lambda k: (k[0], k[1], k[2], list(networks).index(k[3]) if k[3] in networks else 99)):
        v = table[k]
        lines.append(f"| {k[1]} | {k[2]} | {networks.get(k[3], k[3])} | {int(v['params']):,} | "
                     f"{v['kept']:,.0f} | {v['dense'] / MB:.4f} | {v['coo'] / MB:.4f} | {v['compact'] / MB:.4f} | "
                     f"{v['dense'] / v['coo']:.2f}x | {v['dense'] / v['compact']:.2f}x |")
    return lines, level
