"""Figures (PNG) and a Markdown report from a finished sweep or a single ``launch.train`` workdir.

:func:`make_report` writes into ``out_dir``:

* ``curves_<algo>_<dataset>.png`` -- normalized score vs training step, one
  panel per pruner, one line per sparsity level (mean over seeds, band =
  min-max over seeds), dense as a dashed black reference (paper Figs. 1-2);
* ``final_vs_sparsity_<algo>_<dataset>.png`` -- final score vs sparsity, one
  line per pruner (mean, band = +-1 std over seeds), dense as a horizontal line;
* ``layers_<algo>_<dataset>.png`` -- weights left per layer of each network at
  one sparsity level, mean +- std over seeds, log y (paper Fig. 3);
* ``storage_<algo>_<dataset>.png`` -- stored MB vs sparsity of each network:
  dense float32, torch COO (the paper's files), ours
  (:func:`sparse_orl.export.size_table`) (paper Fig. 4);
* ``report.md`` -- final scores per configuration (mean +- std, 95% t
  confidence interval over seeds) and Table 1 (MB per network at 95%).

MB = 10^6 bytes, as in the paper's Table 1.

This module assembles the report (tables, ``report.md``); the data comes from
:mod:`sparse_orl.report.data`, the figures from :mod:`sparse_orl.report.plots` (their public
names are re-exported here). Importing it does not import jax or the trainer.
"""
from __future__ import annotations

import collections
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sparse_orl.store.atomic import atomic_write_text
from sparse_orl.report.plots import plot_curves, plot_final_vs_sparsity, plot_layers, plot_score_vs_weights, plot_storage
from sparse_orl.report.data import (MB, PRUNER_NAMES, Log, final_scores, load_data,
                                    load_many, mean_ci, nearest_level, pct, pruner_name, score_label,
                                    size_summary)

__all__ = ["MB", "PRUNER_NAMES", "final_scores", "load_data", "load_many",
           "make_report", "mean_ci", "nearest_level", "plot_curves", "plot_final_vs_sparsity", "plot_layers",
           "plot_score_vs_weights", "plot_storage", "pruner_name", "score_table", "speed_table", "size_summary", "storage_table"]


# ---- markdown ----------------------------------------------------------------------------------
def _num(x) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def score_table(rows: Sequence[Dict]) -> List[str]:
    finals = final_scores(rows)
    last_step = {}
    for r in rows:
        k = (r["algo"], r["algo_name"], r["data"], r["pruner"], r["sparsity"])
        last_step[k] = max(last_step.get(k, 0), r["step"])
    lines = ["| algorithm | dataset | pruner | sparsity | seeds | step | final score mean ± std | 95% CI | min | max |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    order = sorted(finals, key=lambda k: (k[0], k[1], k[2], k[3] != "dense", k[3], k[4]))
    for k in order:
        vals = list(finals[k].values())
        mean, sd, hw = mean_ci(vals)
        ci = "n/a (1 seed)" if hw is None else f"[{mean - hw:.2f}, {mean + hw:.2f}]"
        sd_txt = "" if sd is None else f" ± {sd:.2f}"
        lines.append(f"| {k[1]} | {k[2]} | {pruner_name(k[3])} | {pct(k[4])} | {len(vals)} | "
                     f"{last_step[k]:,} | {mean:.2f}{sd_txt} | {ci} | {min(vals):.2f} | {max(vals):.2f} |")
    return lines


def speed_table(rows: Sequence[Dict]) -> List[str]:
    """Training throughput per configuration: run-steps per second of its program (every run's
    steps together, the comparable cost on one machine: on a CPU the runs are taken in turn),
    the program's run count, and the weights trained."""
    runs_of = collections.defaultdict(set)
    for r in rows:
        runs_of[r.get("program", "")].add((r["pruner"], r["sparsity"], r["seed"]))
    seen = collections.defaultdict(list)
    for r in rows:
        k = (r["algo_name"], r["data"], r["pruner"], r["sparsity"])
        n = len(runs_of[r.get("program", "")])
        sps = r.get("train_steps_per_s")
        seen[k].append((r.get("weights_kept"), None if sps is None else sps * n, n))
    lines = ["| algorithm | dataset | pruner | sparsity | weights trained | run-steps/s of its program | runs in it |",
             "|---|---|---|---:|---:|---:|---:|"]
    for k in sorted(seen, key=lambda k: (k[0], k[1], k[2] != "dense", k[2], k[3])):
        kept = [v[0] for v in seen[k] if v[0] is not None]
        agg = [v[1] for v in seen[k] if v[1] is not None]
        lines.append(f"| {k[0]} | {k[1]} | {pruner_name(k[2])} | {pct(k[3])} | "
                     + (f"{int(np.mean(kept)):,}" if kept else "n/a") + " | "
                     + (f"{np.mean(agg):,.0f}" if agg else "n/a") + f" | {seen[k][0][2]} |")
    return lines


def storage_table(sizes: Sequence[Dict], networks: Dict[str, str], sparsity: float = 0.95
                  ) -> Tuple[List[str], Optional[float]]:
    table = size_summary(sizes)
    level = nearest_level([k[4] for k in table], sparsity)
    if level is None:
        return ["(no sparse runs with final params)"], None
    lines = ["| algorithm | dataset | network | params | kept weights | dense MB | torch COO MB | ours MB | "
             "dense / COO | dense / ours |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k in sorted((k for k in table if k[4] == level),
                    key=lambda k: (k[0], k[1], k[2], list(networks).index(k[3]) if k[3] in networks else 99)):
        v = table[k]
        lines.append(f"| {k[1]} | {k[2]} | {networks.get(k[3], k[3])} | {int(v['params']):,} | "
                     f"{v['kept']:,.0f} | {v['dense'] / MB:.4f} | {v['coo'] / MB:.4f} | {v['compact'] / MB:.4f} | "
                     f"{v['dense'] / v['coo']:.2f}x | {v['dense'] / v['compact']:.2f}x |")
    return lines, level


def results_table(workdir: str, log: Log = lambda _m: None) -> str:
    """The score table of a workdir (a sweep or a job) as text: one row per configuration."""
    return "\n".join(score_table(load_data(workdir, log, sizes=False)["rows"]))


def make_report(workdir, out_dir: Optional[str] = None, layer_sparsity: float = 0.95,
                table_sparsity: float = 0.95, log: Log = print) -> Dict:
    """Write the PNGs and ``report.md`` for ``workdir`` into ``out_dir`` (default ``<workdir>/report``).

    ``workdir`` may be a sequence of workdirs, merged into one report (``out_dir`` required).
    Returns {"dir", "markdown", "pngs", "table" (the score table's lines)}.
    """
    workdirs = [workdir] if isinstance(workdir, str) else list(workdir)
    if not workdirs:
        raise ValueError("--workdir is empty")
    if len(workdirs) > 1 and not out_dir:
        raise ValueError("--out is required when --workdir lists several workdirs")
    for w in workdirs:
        if not os.path.isdir(w):
            raise ValueError(f"--workdir={w} does not exist (or is not a folder)")
    out_dir = out_dir or os.path.join(workdirs[0], "report")
    data = load_many(workdirs, log)  # everything is read and checked before anything is created
    workdir = data["workdir"]
    rows = data["rows"]
    if not rows:
        raise ValueError(f"{workdir} has no evaluations to report (finished runs with --eval_episodes > 0)")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--out={out_dir} is a file, not a folder")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out={out_dir} cannot be created ({e.strerror or e})") from None
    pngs = plot_curves(rows, out_dir) + plot_final_vs_sparsity(rows, out_dir) + plot_score_vs_weights(rows, out_dir)
    pngs += plot_layers(data["layers"], out_dir, data["networks"], layer_sparsity, log)
    pngs += plot_storage(data["sizes"], out_dir, data["networks"])
    info = data["info"]
    md = [f"# Report: `{', '.join(os.path.normpath(w) for w in workdirs)}`", ""]
    kind = {"sweep": "Sweep", "single": "Single experiment", "several": f"{len(workdirs)} experiments"}[data["kind"]]
    md.append(f"{kind}: {_num(info.get('steps'))} steps per run, "
              f"seeds {info.get('seeds')}, evaluation every {_num(info.get('eval_every'))} steps over "
              f"{info.get('eval_episodes')} episodes"
              + (f" capped at {info['eval_max_episode_steps']} steps" if info.get("eval_max_episode_steps") else "")
              + ".")
    for w in workdirs:
        commands = os.path.join(w, "commands.log")
        if os.path.exists(commands):
            with open(commands, encoding="utf-8") as f:
                cmds = [l.rstrip("\n") for l in f if l.strip()]
            md += ["", f"Commands run on `{w}`:", "", "```"] + cmds[-5:] + ["```"]
    if data["unfinished"]:
        md += ["", f"**Unfinished programs, left out:** {', '.join(data['unfinished'])}"]
    md += ["", "## Final scores", "",
           f"Score at each run's last evaluation ({score_label(rows)}); mean ± sample std over seeds; "
           "95% confidence interval of the mean from Student's t (n/a with one seed).", ""]
    md += score_table(rows)
    md += ["", "## Training speed", "", "Run-steps per second of each configuration's program (steps of all its "
           "runs per second; the first chunk, which compiles, is left out), as measured while it trained: "
           "compare programs run on the same machine under the same load only.", ""]
    md += speed_table(rows)
    if data["diverged"]:
        md += ["", "Diverged runs (non-finite loss; excluded above):", ""]
        md += [f"- {d['algo_name']} {pruner_name(d['pruner'])} {pct(d['sparsity'])} seed "
               f"{d['seed']} on {d['dataset']}: step {d['nan_step']}" for d in data["diverged"]]
    tab, level = storage_table(data["sizes"], data["networks"], table_sparsity)
    lvl = f"{pct(level)}" if level is not None else "n/a"
    note = "" if level is None or abs(level - table_sparsity) < 1e-9 else f" (no runs at {pct(table_sparsity)})"
    md += ["", f"## Table 1: stored size at {lvl} sparsity{note}", "",
           "MB = 10⁶ bytes. Dense: float32, 4 B per parameter. Torch COO: `torch.save` of every tensor's "
           "`to_sparse()` (the paper's format; 20 B per kept weight, 12 B per bias element, plus measured torch "
           "overheads). Ours: the whole compact file of `sparse_orl.export` (lossless float32). Mean over the "
           "sparse runs (pruners and seeds) at that level.", ""]
    md += tab
    md += ["", "## Figures", ""]
    for p in pngs:
        md += [f"### {os.path.basename(p)}", "", f"![{os.path.basename(p)}]({os.path.basename(p)})", ""]
    path = os.path.join(out_dir, "report.md")
    atomic_write_text(path, "\n".join(md) + "\n")
    log(f"report: {path} and {len(pngs)} PNG(s) in {out_dir}")
    return {"dir": out_dir, "markdown": path, "pngs": pngs, "table": score_table(rows)}
