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
* ``score_vs_weights_<algo>_<data>.png`` -- score vs kernel weights trained, one panel per
  data budget, bands = 95% bootstrap intervals;
* ``report.md`` -- scores per configuration (mean ± sample std [95% bootstrap interval] over
  seeds), each sparse configuration against the narrow dense network with the same weights,
  training speed, and Table 1 (MB per network at 95%).

MB = 10^6 bytes, as in the paper's Table 1.

This module assembles the report (tables, ``report.md``); the data comes from
:mod:`sparse_orl.report.data`, the figures from :mod:`sparse_orl.report.plots` (scores) and
:mod:`sparse_orl.report.network_plots` (layers, storage); their public names are re-exported here.
Importing it does not import jax or the trainer.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

from sparse_orl.report.data import Log, load_data, load_many, pct, pruner_name, score_label
from sparse_orl.report.network_plots import plot_layers, plot_storage
from sparse_orl.report.plots import plot_curves, plot_final_vs_sparsity, plot_score_vs_weights
from sparse_orl.report.tables import (WEIGHT_MATCH, aggregate_table, score_table, speed_table, storage_table,
                                      verdict_table)
from sparse_orl.store.summary import LAST_EVALS
from sparse_orl.store.atomic import atomic_write_text


def _num(x) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def results_table(workdir: str, log: Log = lambda _m: None) -> str:
    """The score table of a workdir (a sweep or a job) as text: one row per configuration."""
    return "\n".join(score_table(load_data(workdir, log, sizes=False)["rows"]))


def _check_out(workdirs: List[str], out_dir: Optional[str]) -> str:
    """The report's folder, after refusing (one line naming the flag) what cannot be reported."""
    if not workdirs:
        raise ValueError("--workdir is empty")
    if len(workdirs) > 1 and not out_dir:
        raise ValueError("--out is required when --workdir lists several workdirs")
    for w in workdirs:
        if not os.path.isdir(w):
            raise ValueError(f"--workdir={w} does not exist (or is not a folder)")
    return out_dir or os.path.join(workdirs[0], "report")


def _make_folder(out_dir: str) -> None:
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--out={out_dir} is a file, not a folder")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out={out_dir} cannot be created ({e.strerror or e})") from None


def _header(workdirs: List[str], data: Dict) -> List[str]:
    """The title, what ran (steps, seeds, evaluation), the last commands of each workdir, what is left out."""
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
                cmds = [line.rstrip("\n") for line in f if line.strip()]
            md += ["", f"Commands run on `{w}`:", "", "```"] + cmds[-5:] + ["```"]
    if data["unfinished"]:
        md += ["", f"**Unfinished programs, left out:** {', '.join(data['unfinished'])}"]
    return md


def _results(data: Dict) -> List[str]:
    """Scores, the sparse-versus-narrow verdicts, training speed and diverged runs."""
    rows = data["rows"]
    md = ["", "## Scores", "",
          f"A run's score is the mean of its last {LAST_EVALS} evaluations ({score_label(rows)}); a cell is the "
          "mean ± sample std over seeds [95% bootstrap interval of the mean, percentile method].", ""]
    md += score_table(rows)
    verdict = verdict_table(rows)
    if verdict:
        md += ["", "## Sparse against the narrow dense network with the same weights", "",
               "Each sparse configuration against the narrow dense network whose weight count is within "
               f"{WEIGHT_MATCH:.0%} of its own. Differences are paired by seed (runs of a seed share their data "
               "subset and evaluation episodes) with a 95% Student-t interval (a cell's bootstrap interval is too "
               "narrow at five seeds to rest a verdict on); a side is \"ahead\" only where the interval excludes 0.",
               ""]
        md += verdict
    aggregate = aggregate_table(rows)
    if aggregate:
        md += ["", "## Aggregate over datasets", "",
               "Configurations that ran on two or more datasets: the interquartile mean (IQM: the mean of the middle "
               "50%) of every run score over the datasets, with a 95% bootstrap interval that resamples the runs "
               "within each dataset (Agarwal et al. 2021, rliable's convention); on each dataset, the seeds that "
               "every configuration there has. Scores are normalized, so datasets compare.", ""]
        md += aggregate
    md += ["", "## Training speed", "", "Run-steps per second of each configuration's program (steps of all its "
           "runs per second; the first chunk, which compiles, is left out), as measured while it trained: "
           "compare programs run on the same machine under the same load only.", ""]
    md += speed_table(rows)
    if data["diverged"]:
        md += ["", "Diverged runs (non-finite loss; excluded above):", ""]
        md += [f"- {d['algo_name']} {pruner_name(d['pruner'])} {pct(d['sparsity'])} seed "
               f"{d['seed']} on {d['dataset']}: step {d['nan_step']}" for d in data["diverged"]]
    return md


def _storage(data: Dict, table_sparsity: float) -> List[str]:
    """Table 1: the stored size of dense, torch COO and our compact file at one sparsity."""
    tab, level = storage_table(data["sizes"], data["networks"], table_sparsity)
    lvl = f"{pct(level)}" if level is not None else "n/a"
    note = "" if level is None or abs(level - table_sparsity) < 1e-9 else f" (no runs at {pct(table_sparsity)})"
    return ["", f"## Table 1: stored size at {lvl} sparsity{note}", "",
            "MB = 10⁶ bytes. Dense: float32, 4 B per parameter. Torch COO: `torch.save` of every tensor's "
            "`to_sparse()` (the paper's format; 20 B per kept weight, 12 B per bias element, plus measured torch "
            "overheads). Ours: the whole compact file of `sparse_orl.export` (lossless float32). Mean over the "
            "sparse runs (pruners and seeds) at that level.", ""] + tab


def make_report(workdir, out_dir: Optional[str] = None, layer_sparsity: float = 0.95,
                table_sparsity: float = 0.95, log: Log = print) -> Dict:
    """Write the PNGs and ``report.md`` for ``workdir`` into ``out_dir`` (default ``<workdir>/report``).

    ``workdir`` may be a sequence of workdirs, merged into one report (``out_dir`` required).
    Returns {"dir", "markdown", "pngs", "table" (the score table's lines)}.
    """
    workdirs = [workdir] if isinstance(workdir, str) else list(workdir)
    out_dir = _check_out(workdirs, out_dir)
    data = load_many(workdirs, log)  # everything is read and checked before anything is created
    rows = data["rows"]
    if not rows:
        raise ValueError(f"{data['workdir']} has no evaluations to report (finished runs with --eval_episodes > 0)")
    _make_folder(out_dir)
    pngs = plot_curves(rows, out_dir) + plot_final_vs_sparsity(rows, out_dir) + plot_score_vs_weights(rows, out_dir)
    pngs += plot_layers(data["layers"], out_dir, data["networks"], layer_sparsity, log)
    pngs += plot_storage(data["sizes"], out_dir, data["networks"])
    md = _header(workdirs, data) + _results(data) + _storage(data, table_sparsity) + ["", "## Figures", ""]
    for p in pngs:
        md += [f"### {os.path.basename(p)}", "", f"![{os.path.basename(p)}]({os.path.basename(p)})", ""]
    path = os.path.join(out_dir, "report.md")
    atomic_write_text(path, "\n".join(md) + "\n")
    log(f"report: {path} and {len(pngs)} PNG(s) in {out_dir}")
    return {"dir": out_dir, "markdown": path, "pngs": pngs, "table": score_table(rows)}
