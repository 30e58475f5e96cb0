"""Flag definitions shared by the launchers, and their translation into configs."""
from __future__ import annotations

import sys
from typing import Tuple

from absl import flags


from sparse_orl import options as options_lib
from sparse_orl.options import (  # noqa: F401  (the launchers' names for the shared translation)
    check_agent_options as check_agent_flags,
    agent_config as agent_config_from_flags,
    parse_floats,
    parse_ints,
    prune_config as prune_config_from_flags,
    prune_configs as prune_configs_from_flags,
)


def define_options(specs) -> None:
    """One absl flag per :class:`sparse_orl.options.Option` (help and defaults from the library)."""
    for o in specs:
        if o.kind == "list":
            flags.DEFINE_list(o.name, o.default, o.help)
        elif o.kind == "bool":
            flags.DEFINE_bool(o.name, o.default, o.help)
        elif o.kind == "int":
            flags.DEFINE_integer(o.name, o.default, o.help)
        elif o.kind == "float":
            flags.DEFINE_float(o.name, o.default, o.help)
        elif o.kind == "enum":
            flags.DEFINE_enum(o.name, o.default, list(o.choices), o.help)
        else:
            flags.DEFINE_string(o.name, o.default, o.help)


def define_agent_flags() -> None:
    """``--algo`` and one flag per field of every registered algorithm's config.

    A flag shared by several algorithms with different defaults shows them all in its
    help; a flag left out takes the chosen algorithm's own default.
    """
    define_options(options_lib.agent_options())


def agent_flag_names() -> Tuple[str, ...]:
    return tuple(options_lib.agent_fields())


def define_prune_flags() -> None:
    define_options(options_lib.PRUNE_OPTIONS)


def define_train_flags() -> None:
    """Every flag of ``launch.train`` (the options of :func:`sparse_orl.train`)."""
    define_options(options_lib.train_options())


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


def define_cpu_flags() -> None:
    flags.DEFINE_string("cpu_devices", "auto", "Training on the CPU: split it into this many single-threaded JAX "
                        "devices, each training its own block of the runs (2 on a 2-core CPU: 1.1-1.4x the "
                        "aggregate steps/s of one 2-thread device, BUILD_NOTES issue 13). 'auto': as many as the "
                        "largest program's runs fill (at most one per usable core, at most 10% padding runs) when "
                        "no GPU/TPU plugin is installed, else 1.")


def apply_cpu_devices(FLAGS, runs_per_program: int) -> int:
    """``--cpu_devices`` (before anything touches a JAX device): the device count it chose."""
    from sparse_orl.cpu_devices import auto_cpu_devices, split_cpu

    value = FLAGS.cpu_devices.strip().lower()
    if value == "auto":
        n = 1 if FLAGS.distributed else auto_cpu_devices(runs_per_program)
    else:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"--cpu_devices must be a positive integer or 'auto', got {FLAGS.cpu_devices!r}")
    try:
        split_cpu(n)
    except RuntimeError as e:
        raise ValueError(str(e)) from None
    return n


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


def parse_flags(argv):
    """absl's flag parsing, but a bad flag value is one ``error: ...`` line and exit status 2
    (absl itself prints a FATAL line and exits 1). Pass as ``app.run(main, flags_parser=parse_flags)``."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(str(e))


def fail(message: str) -> None:
    """One clear line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
