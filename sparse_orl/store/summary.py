"""``summary.json``: one typed schema, read and written here only.

A job's summary says what it trained (its config), where (provenance), how each run went
(status, masks, evaluations, speed) and whether it is complete. :func:`read_summary` reads
older summaries too (before ``algo_label`` / ``networks`` were recorded).

The score statistic of the library, stated once: a run's score is the mean normalized
score of its last :data:`LAST_EVALS` evaluations (:meth:`RunResult.score`); where a table
says "final" it is that mean.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional

from sparse_orl.store.atomic import atomic_write_json, read_json

LAST_EVALS = 3


@dataclasses.dataclass
class Eval:
    """One evaluation of a run: the step, every episode's return, their mean, the normalized mean."""

    step: int
    returns: List[float]
    mean_return: float
    normalized_score: Optional[float]

    def to_json(self) -> Dict[str, Any]:
        return {"step": self.step, "returns": self.returns, "return": self.mean_return,
                "normalized_score": self.normalized_score}

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Eval":
        return cls(int(d["step"]), [float(x) for x in d["returns"]], float(d["return"]), d.get("normalized_score"))

    @property
    def score(self) -> float:
        """The normalized score where the dataset has reference returns, else the mean return."""
        return self.normalized_score if self.normalized_score is not None else self.mean_return


@dataclasses.dataclass
class RunResult:
    """One run of a job: (pruner, sparsity, seed), how it went and what it kept."""

    seed: int
    sparsity: float
    pruner: str
    status: str = "ok"  # "ok" | "diverged"
    nan_step: Optional[int] = None
    masks: Dict[str, Any] = dataclasses.field(default_factory=dict)  # {network: pruning.layer_report}
    evals: List[Eval] = dataclasses.field(default_factory=list)
    train_steps_per_s: Optional[float] = None  # per run: its program's run-steps/s divided by its runs
    program_runs: Optional[int] = None  # runs in its compiled program (per run-step speeds)
    program: Optional[str] = None  # its program's folder under programs/ in a several-program workdir
    narrow: Optional[Dict[str, Any]] = None  # the narrow control's sizing record

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def kept(self) -> Optional[int]:
        """Kernel weights the run trains, over all its networks."""
        return sum(int(r["kept"]) for r in self.masks.values()) if self.masks else None

    def score(self, last: int = LAST_EVALS) -> Optional[float]:
        """The run's score: the mean of its last ``last`` evaluations (None without evaluations)."""
        if not self.ok or not self.evals:
            return None
        tail = self.evals[-last:]
        return float(sum(e.score for e in tail) / len(tail))

    def to_json(self) -> Dict[str, Any]:
        d = {"seed": self.seed, "sparsity": self.sparsity, "pruner": self.pruner, "status": self.status,
             "nan_step": self.nan_step, "masks": self.masks, "evals": [e.to_json() for e in self.evals],
             "train_steps_per_s": self.train_steps_per_s}
        for k in ("program_runs", "program", "narrow"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "RunResult":
        return cls(seed=int(d["seed"]), sparsity=float(d["sparsity"]), pruner=d["pruner"],
                   status=d.get("status", "ok"), nan_step=d.get("nan_step"), masks=d.get("masks") or {},
                   evals=[Eval.from_json(e) for e in d.get("evals") or []],
                   train_steps_per_s=d.get("train_steps_per_s"), program_runs=d.get("program_runs"),
                   program=d.get("program"), narrow=d.get("narrow"))


@dataclasses.dataclass
class Summary:
    """A job's ``summary.json``."""

    config: Dict[str, Any]
    runs: List[RunResult]
    complete: bool = False
    provenance: Dict[str, Any] = dataclasses.field(default_factory=dict)
    algo_label: str = ""  # "bc-vae": in file names
    algo_name: str = ""  # "BC (VAE only)": in titles
    score_reference: Dict[str, Any] = dataclasses.field(default_factory=dict)
    env_id: Optional[str] = None
    networks: List[Dict[str, str]] = dataclasses.field(default_factory=list)  # [{"name", "title"}] in order
    programs: Optional[Dict[str, str]] = None  # {program name: folder} of a several-program workdir
    step: Optional[int] = None  # where an interrupted program stopped

    @property
    def dataset(self) -> Optional[str]:
        return self.config.get("dataset")

    def network_titles(self) -> Dict[str, str]:
        """{network: title} in the algorithm's order (older summaries: the masks' order, names as titles)."""
        if self.networks:
            return {n["name"]: n.get("title") or n["name"] for n in self.networks}
        out: Dict[str, str] = {}
        for r in self.runs:
            for k in r.masks:
                out.setdefault(k, k)
        return out

    def to_json(self) -> Dict[str, Any]:
        d = {"config": self.config, "provenance": self.provenance, "algo_label": self.algo_label,
             "algo_name": self.algo_name, "score_reference": self.score_reference, "env_id": self.env_id,
             "networks": self.networks, "complete": self.complete, "runs": [r.to_json() for r in self.runs]}
        if self.programs is not None:
            d["programs"] = self.programs
        if self.step is not None:
            d["step"] = self.step
        return d

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "Summary":
        config = d.get("config", {})
        label, name = d.get("algo_label"), d.get("algo_name")
        if not label:  # older summaries: named from the agent config
            agent = config.get("agent", {})
            algo, sub = str(agent.get("algo")), bool(agent.get("vae_only", False))
            label, name = algo + ("-vae" if sub else ""), algo.upper() + (" (VAE only)" if sub else "")
        return cls(config=config, runs=[RunResult.from_json(r) for r in d.get("runs", [])],
                   complete=bool(d.get("complete")), provenance=d.get("provenance", {}), algo_label=label,
                   algo_name=name or label, score_reference=d.get("score_reference") or {},
                   env_id=d.get("env_id"), networks=d.get("networks") or [], programs=d.get("programs"),
                   step=d.get("step"))


def summary_path(workdir: str) -> str:
    return os.path.join(workdir, "summary.json")


def write_summary(workdir: str, summary: Summary) -> None:
    atomic_write_json(summary_path(workdir), summary.to_json())


def read_summary(workdir: str) -> Optional[Summary]:
    """The summary of ``workdir``; None if it has none. A corrupt file raises ``ValueError`` naming it."""
    path = summary_path(workdir)
    if not os.path.exists(path):
        return None
    d = read_json(path, "summary")
    if not isinstance(d, dict) or not isinstance(d.get("runs", []), list):
        raise ValueError(f"summary {path} is not a summary (no runs list)")
    try:
        return Summary.from_json(d)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"summary {path} is corrupt ({type(e).__name__}: {e})") from None
