"""Named options -> frozen configs: what ``launch.train``'s flags and ``sparse_orl.train(**kw)`` share.

Every option (its name, kind, default and help) is declared here once. ``launch/``
defines one absl flag per option; :func:`sparse_orl.train` takes the same names as
keyword arguments. Both hand their values to :func:`experiment_config` through the
same small interface (``opts[name].present``, ``opts[name].value``, ``opts[name].default``,
``name in opts``), which absl's ``FLAGS`` already has and :class:`Options` gives a dict.
The library never reads flags: it reads whatever it is handed.

Errors name the option as a flag (``--steps ...``): the same words serve both callers.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from sparse_orl import algos as algos_lib
from sparse_orl import pruning
from sparse_orl.config import ALLOCATIONS, NARROW, VAE_SCORES, PruneConfig

KINDS = ("str", "int", "float", "bool", "list", "enum")


@dataclasses.dataclass(frozen=True)
class Option:
    """One named option: a flag of the launchers and a keyword of :func:`sparse_orl.train`."""

    name: str
    kind: str
    default: Any
    help: str
    choices: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TypeError(f"option {self.name}: kind must be one of {KINDS}, got {self.kind!r}")


# ---- the options of one training job ------------------------------------------------------
TRAIN_OPTIONS = (
    Option("dataset", "str", None, "Minari dataset id (e.g. sb3/halfcheetah/expert-v0) or a D4RL .hdf5 path."),
    Option("env", "str", None, "Gymnasium env id for evaluation (default: the dataset's own env)."),
    Option("sparsity", "list", ["0.95"], "Sparsity levels (fraction of prunable weights removed), comma list. "
           "A level of 0 trains the dense network (labelled dense, whatever --pruner says)."),
    Option("seeds", "list", ["0", "1", "2"], "Seeds, comma list."),
    Option("steps", "int", 1_000_000, "Gradient steps per run."),
    Option("batch_size", "int", 100, "Mini-batch size."),
    Option("eval_every", "int", 5000, "Evaluate every this many steps."),
    Option("eval_episodes", "int", 10, "Evaluation episodes per run (0: no evaluation)."),
    Option("eval_max_episode_steps", "int", None, "Cap evaluation episodes at this length (default: env limit)."),
    Option("checkpoint_every", "int", 10000, "Checkpoint every this many steps (and at an interrupt)."),
    Option("max_transitions", "int", None, "Train on a subset of this many transitions, drawn uniformly "
           "without replacement per seed (Sparse-Reg's rule); observation statistics and pruning scores come "
           "from it (default: the whole dataset)."),
    Option("width_multiplier", "float", 1.0, "Hidden widths of the pruned networks times this (e.g. 2 with "
           "--sparsity=0.987 keeps about the weights of width 1 at 0.95: sparse-wide)."),
    Option("workdir", "str", None, "Output folder (config, summary, metrics, checkpoints, final params, report)."),
    Option("log_every_s", "float", 30.0, "Print a progress line (and a metrics row) at least every this many "
           "seconds of training; chunks of training are sized to a few seconds each."),
    Option("chunk_s", "float", 5.0, "Seconds of training per compiled call, sized from the measured speed: how "
           "soon a progress line, Ctrl-C or SIGTERM is acted on (each call is one host sync)."),
    Option("report", "bool", True, "At the end, write the report (report.md and PNGs) into <workdir>/report/."),
    Option("tensorboard", "bool", True, "Write TensorBoard event files into <workdir>/tensorboard/ "
           "(tensorboardX)."),
    Option("wandb_project", "str", None, "Also log to Weights & Biases, in this project (needs `pip install "
           "wandb`)."),
    Option("wandb_mode", "enum", "online", "W&B mode: online, or offline (no network; `wandb sync` later).",
           ("online", "offline")),
)

PRUNE_OPTIONS = (
    Option("pruner", "list", ["snip"], "How to choose masks at initialization: one of "
           f"{', '.join(pruning.registry.registered_names())} (erk_random = random --allocation=erk, the "
           "recommended method at high sparsity; dense = none), or narrow (the equal-parameter dense control: "
           "a dense network with as many weights as each sparsity level keeps), "
           "or a comma list to train several methods side by side in one program."),
    Option("snip_batch", "int", 100, "Transitions in the SNIP (and random/magnitude) scoring batch."),
    Option("grasp_batch", "int", 200, "Transitions in the GraSP scoring batch."),
    Option("allocation", "enum", "global", "Split of each network's kept budget across layers, the pruner's "
           "ranking inside each: global (one ranking, SNIP), erk (Erdős–Rényi-Kernel, RigL) or uniform.",
           tuple(ALLOCATIONS)),
    Option("min_layer_density", "float", 0.0, "Per-layer density floor: each layer keeps at least "
           "ceil(floor * size) weights (0 = off)."),
    Option("prune_iterations", "int", 1, "SNIP/GraSP in this many rounds on an exponential schedule, "
           "rescoring the masked params each round (1 = one-shot)."),
    Option("synflow_iterations", "int", 100, "Rounds of --pruner=synflow (Tanaka et al. 2020 use 100)."),
    Option("vae_score", "enum", "train", "SNIP/GraSP loss for the VAE decoder: the training loss, or the acting "
           "loss MSE(decode(s, z ~ clipped prior), a).", tuple(VAE_SCORES)),
    Option("warmup_steps", "int", 0, "Score masks after this many dense training steps "
           "(NOT pruning at init; label +warmupN). 0 = off."),
    Option("warmup_rewind", "bool", True, "With --warmup_steps: apply the masks to the initial weights "
           "(true) or keep the warmed-up weights (false)."),
    Option("warmup_batch", "int", 100, "Batch size of the dense warm-up steps."),
    Option("rescale_init", "bool", False, "After masking, scale each unit's kept incoming weights by "
           "sqrt(fan_in / kept fan_in) so its pre-activation variance is the dense one "
           "(data-free; still pruning at init; label +rescale)."),
    Option("prune_networks", "list", [], "Prune only these networks of the algorithm, comma list (e.g. actor: "
           "the deployed policy sparse, the critics dense; label +only-actor). Each keeps the mask the full "
           "pruning gives it; the others train dense. Empty = every network the algorithm scores."),
)
REMEDY_OPTIONS = ("allocation", "min_layer_density", "prune_iterations", "synflow_iterations", "vae_score",
                  "warmup_steps", "warmup_rewind", "warmup_batch", "rescale_init", "prune_networks")


def agent_fields() -> Dict[str, list]:
    """{option name: [(algorithm name, dataclass field)]} over every registered algorithm's config."""
    out: Dict[str, list] = {}
    for name, spec in sorted(algos_lib.ALGORITHMS.items()):
        for f in dataclasses.fields(spec.config_cls):
            if "help" in f.metadata:
                out.setdefault(f.metadata.get("flag", f.name), []).append((name, f))
    return out


def _field_kind(f) -> str:
    t = str(f.type)
    if t.startswith("Tuple[int"):
        return "list"
    for k in ("bool", "int", "float", "str"):
        if t in (k, f"Optional[{k}]"):
            return k
    raise TypeError(f"config field {f.name} has a type no option can be made of: {t}")


def _show(v) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, tuple) else str(v)


def agent_options() -> Tuple[Option, ...]:
    """``algo`` and one option per field of every registered algorithm's config.

    An option shared by several algorithms with different defaults shows them all in its
    help and has no default of its own: left out, it takes the chosen algorithm's default.
    """
    out = [Option("algo", "str", "bcq", f"Offline RL algorithm: one of {', '.join(sorted(algos_lib.ALGORITHMS))}.")]
    for name, owners in agent_fields().items():
        f = owners[0][1]
        defaults = {a: fld.default for a, fld in owners}
        same = len({repr(v) for v in defaults.values()}) == 1
        help_ = f.metadata["help"]
        if not same:
            help_ += " Default: " + "; ".join(f"{a} {_show(v)}" for a, v in defaults.items()) + "."
        if len(owners) < len(algos_lib.ALGORITHMS):
            help_ += f" ({', '.join(a for a, _ in owners)} only.)"
        default = f.default if same else None
        kind = _field_kind(f)
        if kind == "list" and default is not None:
            default = [str(v) for v in default]
        out.append(Option(name, kind, default, help_))
    return tuple(out)


def train_options() -> Tuple[Option, ...]:
    """Every option of one training job (``launch.train``'s flags, :func:`sparse_orl.train`'s keywords)."""
    return agent_options() + PRUNE_OPTIONS + TRAIN_OPTIONS


# ---- values ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Value:
    present: bool
    value: Any
    default: Any


class Options:
    """Values for ``specs`` from a dict of the ones given: the interface absl's ``FLAGS`` has.

    Values are checked against their option's kind here (absl does it for flags); list
    options take a list, a tuple or a comma string.
    """

    def __init__(self, specs: Sequence[Option], given: Mapping[str, Any], command: str = "launch.train"):
        self._specs = {o.name: o for o in specs}
        unknown = sorted(set(given) - set(self._specs))
        if unknown:
            raise ValueError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                             f"(the options are {command}'s flags: python -m {command} --help)")
        self._given = {k: _coerce(self._specs[k], v) for k, v in given.items()}

    def __contains__(self, name: str) -> bool:
        return name in self._specs

    def __getitem__(self, name: str) -> _Value:
        o = self._specs[name]
        present = name in self._given
        return _Value(present, self._given[name] if present else o.default, o.default)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name].value
        except KeyError:
            raise AttributeError(name) from None


def _coerce(o: Option, v):
    if v is None:
        return None
    bad = ValueError(f"--{o.name} must be {_KIND_WORDS[o.kind]}, got {v!r}")
    if o.kind == "list":
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        if isinstance(v, (list, tuple)):
            return [str(x) for x in v]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return [str(v)]
        raise bad
    if o.kind == "bool":
        if not isinstance(v, bool):
            raise bad
        return v
    if o.kind == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            raise bad
        return v
    if o.kind == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad
        return float(v)
    if not isinstance(v, str):
        raise bad
    if o.kind == "enum" and v not in o.choices:
        raise ValueError(f"--{o.name} must be one of {', '.join(o.choices)}, got {v!r}")
    return v


_KIND_WORDS = {"list": "a list (or a comma string)", "bool": "True or False", "int": "an integer",
               "float": "a number", "str": "a string", "enum": "a string"}


def parse_ints(values: Sequence[str], flag: str) -> Tuple[int, ...]:
    try:
        return tuple(int(v) for v in values if str(v).strip() != "")
    except ValueError:
        raise ValueError(f"--{flag} must be a comma list of integers, got {','.join(map(str, values))!r}") from None


def parse_floats(values: Sequence[str], flag: str) -> Tuple[float, ...]:
    try:
        return tuple(float(v) for v in values if str(v).strip() != "")
    except ValueError:
        raise ValueError(f"--{flag} must be a comma list of numbers, got {','.join(map(str, values))!r}") from None


# ---- options -> configs ---------------------------------------------------------------------
def check_agent_options(opts, algo_names: Sequence[str]) -> None:
    """Refuse an agent option given that none of ``algo_names`` takes."""
    for name, owners in agent_fields().items():
        if opts[name].present and not any(a in algo_names for a, _ in owners):
            raise ValueError(f"--{name} applies to --algo={','.join(a for a, _ in owners)} only")


def agent_config(opts, algo: Optional[str] = None):
    """The config of ``algo`` (default: the ``algo`` option): its defaults, with the options given set."""
    name = algo or opts.algo
    if name not in algos_lib.ALGORITHMS:
        raise ValueError(f"--algo must be one of {', '.join(sorted(algos_lib.ALGORITHMS))}, got {name!r}")
    spec = algos_lib.get_spec(name)
    kw = {}
    for opt, owners in agent_fields().items():
        for a, f in owners:
            if a == name and opts[opt].present:
                v = opts[opt].value
                kw[f.name] = parse_ints(v, opt) if _field_kind(f) == "list" else v
    return spec.config_cls(**kw)


def preset(name: str):
    """(base method, options) a pruner name stands for: erk_random -> (random, {allocation: erk})."""
    if name == NARROW:
        return name, {}
    try:
        canonical, spec = pruning.registry.resolve_pruner(name)
    except ValueError as e:
        raise ValueError(f"--pruner: {e}") from None
    if not spec.defaults:
        return canonical, {}
    return PruneConfig(pruner=canonical).pruner, dict(spec.defaults)


def prune_config(opts, pruner: Optional[str] = None) -> PruneConfig:
    """The pruning method ``pruner`` (default: the first of ``pruner``) with the scoring and remedy options.

    Remedy options apply to every method listed that takes them (e.g.
    ``--pruner=none,snip,random --allocation=erk`` gives none, snip+erk,
    random+erk); a remedy option that no listed method takes is an error.
    """
    name = pruner or opts.pruner[0]
    base, pre = preset(name)
    options = {f: getattr(opts, f) for f in REMEDY_OPTIONS if f in opts}
    for f, v in pre.items():
        if opts[f].present and options[f] != v:
            raise ValueError(f"--pruner={name} means --pruner={base} --{f}={v}; it conflicts with --{f}={options[f]}")
        options[f] = v
    listed = [base]
    for list_opt in ("pruner", "pruners"):  # launch.train's --pruner, launch.sweep's --pruners
        if list_opt in opts and opts[list_opt].present:
            listed += [preset(p.strip())[0] for p in getattr(opts, list_opt) if p.strip()]
    for f, v in options.items():
        if opts[f].present and v != opts[f].default and not any(
                f in PruneConfig.applicable_remedies(p) for p in listed):
            raise ValueError(f"--{f} does not apply to --pruner={','.join(dict.fromkeys(listed))}")
    if base == NARROW:
        return PruneConfig(NARROW)
    return PruneConfig.for_pruner(base, snip_batch=opts.snip_batch, grasp_batch=opts.grasp_batch, **options)


def prune_configs(opts) -> Tuple[PruneConfig, ...]:
    """One PruneConfig per method of the ``pruner`` option."""
    names = [p.strip() for p in (opts.pruner or []) if p.strip()]
    if not names:
        raise ValueError(f"--pruner is empty: give one of {list(pruning.registry.registered_names())}")
    return tuple(prune_config(opts, pruner=n) for n in names)


def run_settings(opts) -> Dict[str, Any]:
    """The per-run settings a job and a sweep share: steps, batch, evaluation and checkpoint cadence."""
    return {k: getattr(opts, k) for k in ("steps", "batch_size", "eval_every", "eval_episodes", "checkpoint_every",
                                          "eval_max_episode_steps", "max_transitions", "width_multiplier")}


def experiment_config(opts, warn=None):
    """The :class:`~sparse_orl.experiment.ExperimentConfig` of one training job, validated.

    ``warn(message)`` is told about options that are given but change nothing.
    """
    from sparse_orl.experiment_config import ExperimentConfig, LogConfig

    if not opts.dataset:
        raise ValueError("--dataset is required (a Minari id or a D4RL .hdf5 path)")
    if not opts.workdir:
        raise ValueError("--workdir is required")
    check_agent_options(opts, [opts.algo])
    agent = agent_config(opts)
    prunes = prune_configs(opts)
    sparsities = parse_floats(opts.sparsity, "sparsity")
    if all(p.is_dense for p in prunes):
        if opts["sparsity"].present and any(s != 0.0 for s in sparsities) and warn is not None:
            warn(f"--pruner={','.join(opts.pruner)} trains the dense network; ignoring --sparsity="
                 f"{','.join(opts.sparsity)}")
        sparsities = (0.0,)
    if opts.log_every_s is None or not opts.log_every_s > 0:
        raise ValueError(f"--log_every_s must be positive, got {opts.log_every_s}")
    if opts.wandb_mode != "online" and not opts.wandb_project:
        raise ValueError("--wandb_mode needs --wandb_project")
    if opts.wandb_project:
        import importlib.util

        if importlib.util.find_spec("wandb") is None:
            raise ValueError("--wandb_project needs the wandb package: pip install wandb (or leave it out)")
    config = ExperimentConfig(
        dataset=opts.dataset,
        workdir=opts.workdir,
        agent=agent,
        prunes=prunes,
        seeds=parse_ints(opts.seeds, "seeds"),
        sparsities=sparsities,
        env=opts.env,
        **run_settings(opts),
    )
    config.validate()
    if opts.chunk_s is None or not opts.chunk_s > 0:
        raise ValueError(f"--chunk_s must be positive, got {opts.chunk_s}")
    logs = LogConfig(log_every_s=float(opts.log_every_s), chunk_s=float(opts.chunk_s), report=bool(opts.report),
                     tensorboard=bool(opts.tensorboard), wandb_project=opts.wandb_project,
                     wandb_mode=opts.wandb_mode)
    return config, logs

