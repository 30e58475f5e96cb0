"""Flag definitions shared by the launchers, and their translation into configs."""
from __future__ import annotations

import dataclasses
import sys
from typing import Optional, Sequence, Tuple

from absl import flags

from sparse_orl import algos as algos_lib
from sparse_orl import pruning
from sparse_orl.config import NARROW, PruneConfig

FLAG_ALIASES = {"pruner": {"dense": "none"}}


def _agent_fields():
    """{flag name: [(algorithm name, dataclass field)]} over every registered algorithm's config."""
    out = {}
    for name, spec in sorted(algos_lib.ALGORITHMS.items()):
        for f in dataclasses.fields(spec.config_cls):
            if "help" in f.metadata:
                out.setdefault(f.metadata.get("flag", f.name), []).append((name, f))
    return out


def _kind(f) -> str:
    t = str(f.type)
    if t.startswith("Tuple[int"):
        return "ints"
    for k in ("bool", "int", "float", "str"):
        if t in (k, f"Optional[{k}]"):
            return k
    raise TypeError(f"config field {f.name} has a type launch/ cannot make a flag of: {t}")


def define_agent_flags() -> None:
    """``--algo`` and one flag per field of every registered algorithm's config.

    A flag shared by several algorithms with different defaults shows them all in its
    help; a flag left out takes the chosen algorithm's own default.
    """
    flags.DEFINE_string("algo", "bcq", f"Offline RL algorithm: one of {', '.join(sorted(algos_lib.ALGORITHMS))}.")
    for flag, owners in _agent_fields().items():
        f = owners[0][1]
        defaults = {a: fld.default for a, fld in owners}
        same = len({repr(v) for v in defaults.values()}) == 1
        help_ = f.metadata["help"]
        if not same:
            help_ += " Default: " + "; ".join(f"{a} {_show(v)}" for a, v in defaults.items()) + "."
        if len(owners) < len(algos_lib.ALGORITHMS):
            help_ += f" ({', '.join(a for a, _ in owners)} only.)"
        default = f.default if same else None
        kind = _kind(f)
        if kind == "ints":
            flags.DEFINE_list(flag, None if default is None else [str(v) for v in default], help_)
        elif kind == "bool":
            flags.DEFINE_bool(flag, default, help_)
        elif kind == "int":
            flags.DEFINE_integer(flag, default, help_)
        elif kind == "float":
            flags.DEFINE_float(flag, default, help_)
        else:
            flags.DEFINE_string(flag, default, help_)


def _show(v) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, tuple) else str(v)


def agent_flag_names() -> Tuple[str, ...]:
    return tuple(_agent_fields())


def check_agent_flags(FLAGS, algo_names: Sequence[str]) -> None:
    """Refuse an agent flag given on the command line that none of ``algo_names`` takes."""
    for flag, owners in _agent_fields().items():
        if FLAGS[flag].present and not any(a in algo_names for a, _ in owners):
            raise ValueError(f"--{flag} applies to --algo={','.join(a for a, _ in owners)} only")


def agent_config_from_flags(FLAGS, algo: Optional[str] = None):
    """The config of ``algo`` (default ``--algo``): its defaults, with the flags given set."""
    name = algo or FLAGS.algo
    if name not in algos_lib.ALGORITHMS:
        raise ValueError(f"--algo must be one of {', '.join(sorted(algos_lib.ALGORITHMS))}, got {name!r}")
    spec = algos_lib.get_spec(name)
    kw = {}
    for flag, owners in _agent_fields().items():
        for a, f in owners:
            if a == name and FLAGS[flag].present:
                v = FLAGS[flag].value
                kw[f.name] = parse_ints(v, flag) if _kind(f) == "ints" else v
    return spec.config_cls(**kw)


def define_prune_flags() -> None:
    from sparse_orl.config import ALLOCATIONS, VAE_SCORES

    flags.DEFINE_list("pruner", ["snip"], "How to choose masks at initialization: one of "
                      f"{', '.join(pruning.registry.registered_names())} (erk_random = random --allocation=erk, the "
                      "recommended method at high sparsity; dense = none), or narrow (the equal-parameter dense control: "
                      "a dense network with as many weights as each sparsity level keeps), "
                      "or a comma list to train several methods side by side in one program.")
    flags.DEFINE_integer("snip_batch", 100, "Transitions in the SNIP (and random/magnitude) scoring batch.")
    flags.DEFINE_integer("grasp_batch", 200, "Transitions in the GraSP scoring batch.")
    flags.DEFINE_enum("allocation", "global", list(ALLOCATIONS),
                      "Split of each network's kept budget across layers, the pruner's ranking inside each: "
                      "global (one ranking, SNIP), erk (Erdős–Rényi-Kernel, RigL) or uniform.")
    flags.DEFINE_float("min_layer_density", 0.0, "Per-layer density floor: each layer keeps at least "
                       "ceil(floor * size) weights (0 = off).")
    flags.DEFINE_integer("prune_iterations", 1, "SNIP/GraSP in this many rounds on an exponential schedule, "
                         "rescoring the masked params each round (1 = one-shot).")
    flags.DEFINE_integer("synflow_iterations", 100, "Rounds of --pruner=synflow (Tanaka et al. 2020 use 100).")
    flags.DEFINE_enum("vae_score", "train", list(VAE_SCORES),
                      "SNIP/GraSP loss for the VAE decoder: the training loss, or the acting loss "
                      "MSE(decode(s, z ~ clipped prior), a).")
    flags.DEFINE_integer("warmup_steps", 0, "Score masks after this many dense training steps "
                         "(NOT pruning at init; label +warmupN). 0 = off.")
    flags.DEFINE_bool("warmup_rewind", True, "With --warmup_steps: apply the masks to the initial weights "
                      "(true) or keep the warmed-up weights (false).")
    flags.DEFINE_integer("warmup_batch", 100, "Batch size of the dense warm-up steps.")
    flags.DEFINE_bool("rescale_init", False, "After masking, scale each unit's kept incoming weights by "
                      "sqrt(fan_in / kept fan_in) so its pre-activation variance is the dense one "
                      "(data-free; still pruning at init; label +rescale).")


_REMEDY_FLAGS = ("allocation", "min_layer_density", "prune_iterations", "synflow_iterations", "vae_score",
                 "warmup_steps", "warmup_rewind", "warmup_batch", "rescale_init")


def parse_ints(values: Sequence[str], flag: str) -> Tuple[int, ...]:
    try:
        return tuple(int(v) for v in values if str(v).strip() != "")
    except ValueError:
        raise ValueError(f"--{flag} must be a comma list of integers, got {','.join(values)!r}") from None


def parse_floats(values: Sequence[str], flag: str) -> Tuple[float, ...]:
    try:
        return tuple(float(v) for v in values if str(v).strip() != "")
    except ValueError:
        raise ValueError(f"--{flag} must be a comma list of numbers, got {','.join(values)!r}") from None


def prune_config_from_flags(FLAGS, pruner: Optional[str] = None) -> PruneConfig:
    """The pruning method ``pruner`` (default: the first of ``--pruner``) with the scoring and remedy flags.

    Remedy flags apply to every method in ``--pruner`` that takes them (e.g.
    ``--pruner=none,snip,random --allocation=erk`` gives none, snip+erk,
    random+erk); a remedy flag that no listed method takes is an error.
    """
    name = pruner or FLAGS.pruner[0]
    base, preset = _preset(name)
    options = {f: getattr(FLAGS, f) for f in _REMEDY_FLAGS if f in FLAGS}
    for f, v in preset.items():
        if FLAGS[f].present and options[f] != v:
            raise ValueError(f"--pruner={name} means --pruner={base} --{f}={v}; it conflicts with --{f}={options[f]}")
        options[f] = v
    listed = [base]
    for list_flag in ("pruner", "pruners"):  # launch.train's --pruner, launch.sweep's --pruners
        if list_flag in FLAGS and FLAGS[list_flag].present:
            listed += [_preset(p.strip())[0] for p in getattr(FLAGS, list_flag) if p.strip()]
    for f, v in options.items():
        if FLAGS[f].present and v != FLAGS[f].default and not any(
                f in PruneConfig.applicable_remedies(p) for p in listed):
            raise ValueError(f"--{f} does not apply to --pruner={','.join(dict.fromkeys(listed))}")
    if base == NARROW:
        return PruneConfig(NARROW)
    return PruneConfig.for_pruner(base, snip_batch=FLAGS.snip_batch, grasp_batch=FLAGS.grasp_batch, **options)


def _preset(name: str):
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


def prune_configs_from_flags(FLAGS) -> Tuple[PruneConfig, ...]:
    """One PruneConfig per method in ``--pruner``."""
    names = [p.strip() for p in FLAGS.pruner if p.strip()]
    if not names:
        raise ValueError(f"--pruner is empty: give one of {list(pruning.registry.registered_names())}")
    return tuple(prune_config_from_flags(FLAGS, pruner=n) for n in names)


def define_distributed_flags() -> None:
    flags.DEFINE_bool("distributed", False, "Multi-host: call jax.distributed.initialize() first, so the runs "
                      "are sharded over the devices of every process (e.g. all hosts of a Cloud TPU pod slice; "
                      "start the same command on every host, with a --workdir they all share).")
    flags.DEFINE_string("coordinator_address", None, "With --distributed: host:port of process 0 (default: "
                        "auto-detected on Cloud TPU, Slurm, ...).")
    flags.DEFINE_integer("num_processes", None, "With --distributed: number of processes (default: auto-detected).")
    flags.DEFINE_integer("process_id", None, "With --distributed: this process's index in [0, num_processes) "
                         "(default: auto-detected).")


_DISTRIBUTED_FLAGS = ("coordinator_address", "num_processes", "process_id")


def init_distributed(FLAGS) -> None:
    """With ``--distributed``: ``jax.distributed.initialize()`` with the cluster flags that were given.

    Call it first in ``main``, before anything that touches a JAX device.
    """
    given = {f: getattr(FLAGS, f) for f in _DISTRIBUTED_FLAGS if getattr(FLAGS, f) is not None}
    if not FLAGS.distributed:
        if given:
            raise ValueError(f"--{next(iter(given))} needs --distributed")
        return
    import jax

    try:
        jax.distributed.initialize(**given)
    except (RuntimeError, ValueError) as e:  # e.g. no cluster to auto-detect outside TPU/Slurm
        hint = "" if given else " (outside Cloud TPU / Slurm give --coordinator_address, --num_processes, --process_id)"
        raise ValueError(f"--distributed: jax.distributed.initialize() failed: {e}{hint}") from None


def fail(message: str) -> None:
    """One clear line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
