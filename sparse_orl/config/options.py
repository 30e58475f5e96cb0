"""The flat option namespace of a job, derived from the config fields, and the one builder of its configs.

``launch.train``'s flags and :func:`sparse_orl.train`'s keywords are the same names: the option
fields of :class:`Selection`, :class:`ExperimentConfig` (``sparsities`` is ``--sparsity``),
:class:`PruneConfig`, every registered algorithm's config and :class:`LogConfig`. An option
shared by several algorithms with different defaults (``--lr``) has no default of its own: left
out, it takes the chosen algorithm's default. :func:`build_job` turns typed values (what a
caller gave, nothing else) into validated configs; the launchers convert flag text to typed
values first (``launch/flags.py``), the Python API passes its keywords as they are.
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from sparse_orl import algos as algos_lib
from sparse_orl.config.job import ExperimentConfig, LogConfig, Selection
from sparse_orl.config.prune import PruneConfig, PrunerOptions, pruner_names
from sparse_orl.fields import Spec, check_value, specs
import importlib.util

Warn = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Option:
    """One flag / keyword: its spec and the config class(es) that own it (several for a shared
    algorithm option, with their own defaults)."""

    spec: Spec
    owners: Tuple[type, ...]
    group: str
    defaults: Tuple[Tuple[str, Any], ...] = ()  # (algo, default) where the owners' defaults differ

    @property
    def name(self) -> str:
        return self.spec.flag

    @property
    def default(self):
        return None if self.defaults else self.spec.default

    @property
    def help(self) -> str:
        text = self.spec.help.format(algos=", ".join(sorted(algos_lib.ALGORITHMS)), pruners=", ".join(pruner_names()))
        if self.defaults:
            text += " Default: " + "; ".join(f"{a} {_show(v)}" for a, v in self.defaults) + "."
        algo_owners = [c.algo for c in self.owners if issubclass(c, algos_lib.AlgoConfig)]
        if algo_owners and len(algo_owners) < len(algos_lib.ALGORITHMS):
            text += f" ({', '.join(sorted(algo_owners))} only.)"
        return text


def _show(v) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, tuple) else str(v)


def agent_option_owners() -> Dict[str, List[Tuple[str, Spec]]]:
    """{option name: [(algorithm, spec)]} over every registered algorithm's config."""
    out: Dict[str, List[Tuple[str, Spec]]] = {}
    for name, reg in sorted(algos_lib.ALGORITHMS.items()):
        for s in specs(reg.config_cls):
            out.setdefault(s.flag, []).append((name, s))
    return out


def agent_options() -> Tuple[Option, ...]:
    """One option per field of every registered algorithm's config (merged by name)."""
    out = []
    for name, owners in agent_option_owners().items():
        defaults = {a: s.default for a, s in owners}
        differ = len({repr(v) for v in defaults.values()}) > 1
        classes = tuple(algos_lib.get_spec(a).config_cls for a, _ in owners)
        out.append(Option(owners[0][1], classes, "the algorithm", tuple(defaults.items()) if differ else ()))
    return tuple(out)


def _options(cls, group: str, skip: Sequence[str] = ()) -> Tuple[Option, ...]:
    return tuple(Option(s, (cls,), group) for s in specs(cls) if s.flagged and s.name not in skip)


def job_options() -> Tuple[Option, ...]:
    """Every option of one training job, grouped as the README's flag table shows them."""
    sel = {s.name: Option(s, (Selection,), "") for s in specs(Selection)}
    job = _options(ExperimentConfig, "the job")
    return ((dataclasses.replace(sel["pruner"], group="pruning at init"),) + _options(PrunerOptions, "pruning at init")
            + _options(PruneConfig, "pruning at init")
            + (dataclasses.replace(sel["algo"], group="the algorithm"),) + agent_options()
            + job + _options(LogConfig, "the job"))


# ---- typed values -> configs ----------------------------------------------------------------
def check_names(given: Mapping[str, Any], options: Sequence[Option], command: str,
                extra: Sequence[str] = ()) -> None:
    """Refuse a name that is no option, suggesting the closest ones."""
    known = [o.name for o in options] + list(extra)
    unknown = sorted(set(given) - set(known))
    if unknown:
        hints = []
        for u in unknown:
            close = difflib.get_close_matches(u, known, n=1)
            hints.append(f"{u}" + (f" (did you mean {close[0]}?)" if close else ""))
        raise ValueError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; the options are "
                         f"{command}'s flags (python -m {command} --help)")


def agent_config(given: Mapping[str, Any], algo: str):
    """The config of ``algo``: its defaults, with the agent options given set (typed values)."""
    if algo not in algos_lib.ALGORITHMS:
        raise ValueError(f"--algo must be one of {', '.join(sorted(algos_lib.ALGORITHMS))}, got {algo!r}")
    cls = algos_lib.get_spec(algo).config_cls
    by_flag = {s.flag: s for s in specs(cls)}
    return cls(**{by_flag[k].name: v for k, v in given.items() if k in by_flag})


def check_agent_options(given: Mapping[str, Any], algos: Sequence[str]) -> None:
    """Refuse an agent option that none of ``algos`` takes."""
    for name, owners in agent_option_owners().items():
        if name in given and not any(a in algos for a, _ in owners):
            raise ValueError(f"--{name} applies to --algo={','.join(a for a, _ in owners)} only")


def prune_configs(names: Sequence[str], given: Mapping[str, Any]) -> Tuple[PruneConfig, ...]:
    """One PruneConfig per method name, each with the pruning options given that apply to it.

    A method's own options (``--snip_batch``, ``--synflow_rounds``) apply to it alone; the other
    pruning options to every method listed that takes them (``--pruner=dense,snip,random
    --allocation=erk`` gives dense, snip+erk, erk_random). An option that applies to none of the
    methods listed is refused.
    """
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise ValueError(f"--pruner is empty: give one of {', '.join(pruner_names())}")
    for n in names:
        if n not in pruner_names():
            close = difflib.get_close_matches(n, pruner_names(), n=1)
            raise ValueError(f"--pruner must be one of {', '.join(pruner_names())}, got {n!r}"
                             + (f" (did you mean {close[0]}?)" if close else ""))
    own_fields = {s.flag for s in specs(PrunerOptions)}
    own = PrunerOptions(**{k: v for k, v in given.items() if k in own_fields})
    bases = {PruneConfig(pruner=n).pruner if n != "narrow" else n for n in names}
    for k in given:
        if k in own_fields and PrunerOptions.owner(k) not in bases:
            raise ValueError(f"--{k} applies to --pruner={PrunerOptions.owner(k)} only")
    fields = {s.flag: s.name for s in specs(PruneConfig) if s.flagged}
    opts = {fields[k]: v for k, v in given.items() if k in fields}
    for f in opts:
        if not any(f in PruneConfig.applicable(n) for n in names):
            raise ValueError(f"--{f} does not apply to --pruner={','.join(names)}")
    return tuple(PruneConfig.for_pruner(n, **opts, **own.for_method(n)) for n in names)


def typed(options: Sequence[Option], given: Mapping[str, Any]) -> Dict[str, Any]:
    """``given`` with each value normalized to its option's kind (numpy scalars, lists, paths accepted)."""
    by_name = {o.name: o for o in options}
    return {k: check_value(by_name[k].spec, v) if k in by_name else v for k, v in given.items()}


def build_job(given: Mapping[str, Any], warn: Optional[Warn] = None, agent=None,
              prunes: Optional[Sequence[PruneConfig]] = None) -> Tuple[ExperimentConfig, LogConfig]:
    """The validated configs of one job from the options ``given`` (typed values; names as flags).

    ``agent`` / ``prunes``: config objects instead of ``algo`` + agent options / ``pruner`` +
    pruning options. ``warn(message)`` is told about options given that change nothing.
    """
    options = job_options()
    check_names(given, options, "launch.train")
    given = typed(options, given)
    agent_names = set(agent_option_owners())
    if agent is not None:
        mixed = sorted(k for k in given if k in agent_names or k == "algo")
        if mixed:
            raise ValueError(f"give either agent= (a config object) or the algorithm options, not both: {mixed}")
    else:
        algo = given.get("algo", "bcq")
        check_agent_options(given, [algo])
        agent = agent_config({k: v for k, v in given.items() if k in agent_names}, algo)
    prune_fields = {s.flag for s in specs(PruneConfig)} | {s.flag for s in specs(PrunerOptions)}
    if prunes is not None:
        mixed = sorted(k for k in given if k in prune_fields or k == "pruner")
        if mixed:
            raise ValueError(f"give either prunes= (config objects) or the pruning options, not both: {mixed}")
        prunes = tuple(prunes)
    else:
        prunes = prune_configs(given.get("pruner", Selection.pruner), given)
    job_fields = {s.flag: s.name for s in specs(ExperimentConfig) if s.flagged}
    kw = {job_fields[k]: v for k, v in given.items() if k in job_fields}
    if all(p.is_dense for p in prunes):
        if any(s != 0.0 for s in kw.get("sparsities", ())) and warn is not None:
            warn(f"--pruner={','.join(p.pruner for p in prunes)} trains the dense network; ignoring --sparsity")
        kw["sparsities"] = (0.0,)
    config = ExperimentConfig(agent=agent, prunes=prunes, **kw)
    config.validate()
    log_fields = {s.flag: s.name for s in specs(LogConfig)}
    logs = LogConfig(**{log_fields[k]: v for k, v in given.items() if k in log_fields})
    if logs.wandb_project:

        if importlib.util.find_spec("wandb") is None:
            raise ValueError("--wandb_project needs the wandb package: pip install wandb (or leave it out)")
    return config, logs
