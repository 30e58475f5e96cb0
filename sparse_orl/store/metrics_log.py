"""Training metrics where people already read them: ``metrics.jsonl``, ``metrics.csv``, TensorBoard, W&B.

One :class:`MetricsLog` per training program, written by process 0 only. Every row
(one per run and logged step: the losses averaged since the previous row, and at an
evaluation step the run's return and normalized score) goes to all the sinks:

- ``metrics.jsonl``: the record a resume and the reports read;
- ``metrics.csv``: the same rows, one column per key (rebuilt from the JSONL on resume);
- ``tensorboard/<run>/``: event files through tensorboardX, one folder per run so
  TensorBoard draws one line per run (``tensorboard --logdir <workdir>/tensorboard``);
- Weights & Biases, when a project is given and ``wandb`` is installed (mode
  ``offline`` needs no network; ``wandb sync`` uploads later).

On resume the rows after the checkpoint being resumed are dropped from every file
(they will be trained again), and TensorBoard purges its events after that step.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import uuid
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from sparse_orl.store.atomic import append_jsonl, atomic_write_text, write_jsonl

ID_COLUMNS = ("step", "pruner", "sparsity", "seed")


def read_jsonl_counted(path: str) -> Tuple[List[Dict], int]:
    """(rows, number of lines that could not be read) of a JSON-lines file."""
    rows, bad = [], 0
    if not os.path.exists(path):
        return rows, bad
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(row, dict) and "step" in row:
                rows.append(row)
            else:
                bad += 1
    return rows, bad


def run_name(pruner: str, sparsity: float, seed: int) -> str:
    """A run's folder name in TensorBoard and its key prefix in W&B: "snip-0.95-seed0", "dense-seed1"."""
    return f"dense-seed{seed}" if pruner == "dense" else f"{pruner}-{sparsity:g}-seed{seed}"


class MetricsLog:
    """The metrics sinks of one workdir (see the module docstring). ``write=False``: a no-op."""

    def __init__(self, workdir: str, columns: Sequence[str], start_step: int, tensorboard: bool = True,
                 wandb_project: Optional[str] = None, wandb_mode: str = "online", config: Optional[Dict] = None,
                 write: bool = True, log: Callable[[str], None] = print):
        self.workdir, self.write_files, self.log = workdir, write, log
        self.columns = list(ID_COLUMNS) + [c for c in columns if c not in ID_COLUMNS]
        self.jsonl = os.path.join(workdir, "metrics.jsonl")
        self.csv = os.path.join(workdir, "metrics.csv")
        self._tb: Dict[str, object] = {}
        self._tb_root = os.path.join(workdir, "tensorboard") if tensorboard and write else None
        self._start_step = start_step
        self._wandb = None
        if not write:
            return
        rows, bad = read_jsonl_counted(self.jsonl)
        kept = [r for r in rows if r.get("step", 0) <= start_step]
        if bad:
            log(f"warning: {self.jsonl}: {bad} unreadable line{'s' if bad > 1 else ''} dropped (a killed or "
                f"failed write); {len(kept)} rows kept, up to step {max((r['step'] for r in kept), default=0)}")
        if bad or len(kept) != len(rows) or not os.path.exists(self.csv):
            write_jsonl(self.jsonl, kept)  # the rows after the checkpoint are trained again
            atomic_write_text(self.csv, self._csv_text(kept, header=True))
        if tensorboard:
            try:
                import tensorboardX  # noqa: F401
            except ImportError:
                log("warning: --tensorboard needs tensorboardX (pip install tensorboardX); not writing events")
                self._tb_root = None
        if wandb_project:
            self._wandb = _start_wandb(workdir, wandb_project, wandb_mode, config or {}, log)

    # -- rows ---------------------------------------------------------------------------------
    def _csv_text(self, rows: Sequence[Dict], header: bool) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        if header:
            w.writeheader()
        for r in rows:
            w.writerow({k: _cell(r.get(k)) for k in self.columns})
        return buf.getvalue()

    def write(self, rows: Sequence[Dict]) -> None:
        """Append ``rows`` (dicts with at least :data:`ID_COLUMNS`) to every sink."""
        if not self.write_files or not rows:
            return
        append_jsonl(self.jsonl, rows)
        with open(self.csv, "a", encoding="utf-8") as f:
            f.write(self._csv_text(rows, header=False))
        if self._tb_root is not None:
            for r in rows:
                w = self._writer(run_name(r["pruner"], r["sparsity"], r["seed"]))
                for k, v in r.items():
                    if k not in ID_COLUMNS and isinstance(v, (int, float)) and k != "nan_step":
                        w.add_scalar(k, float(v), int(r["step"]))
                w.flush()
        if self._wandb is not None:
            by_step: Dict[int, Dict] = {}
            for r in rows:
                name = run_name(r["pruner"], r["sparsity"], r["seed"])
                d = by_step.setdefault(int(r["step"]), {})
                d.update({f"{name}/{k}": float(v) for k, v in r.items()
                          if k not in ID_COLUMNS and isinstance(v, (int, float)) and k != "nan_step"})
            for step in sorted(by_step):
                self._wandb.log(by_step[step], step=step)

    def _writer(self, name: str):
        if name not in self._tb:
            from tensorboardX import SummaryWriter  # optional: checked at construction

            # purge_step: events a killed run wrote after the resumed checkpoint are hidden
            self._tb[name] = SummaryWriter(os.path.join(self._tb_root, name),
                                           purge_step=self._start_step + 1 if self._start_step else None)
        return self._tb[name]

    def close(self) -> None:
        for w in self._tb.values():
            w.close()
        self._tb = {}
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def _cell(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return "" if v is None else v


def _start_wandb(workdir: str, project: str, mode: str, config: Dict, log):
    """A W&B run for this workdir, resumed on rerun (its id is kept in ``<workdir>/wandb_id``)."""
    try:  # optional: pip install wandb
        import wandb
    except ImportError:
        raise ValueError("--wandb_project needs the wandb package: pip install wandb "
                         "(or leave --wandb_project out)") from None
    id_path = os.path.join(workdir, "wandb_id")
    if os.path.exists(id_path):
        with open(id_path, encoding="utf-8") as f:
            run_id = f.read().strip()
    else:
        run_id = uuid.uuid4().hex[:12]
        atomic_write_text(id_path, run_id + "\n")
    run = wandb.init(project=project, mode=mode, dir=workdir, id=run_id, resume="allow", config=config,
                     name=os.path.basename(os.path.normpath(workdir)))
    log(f"W&B: project {project}, run {run_id} ({mode})")
    return run
