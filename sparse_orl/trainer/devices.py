"""The host CPU as several single-threaded JAX devices, so blocks of runs train side by side.

A 2-core CPU running one program of many runs uses both cores inside every matmul
(Eigen's thread pool). At the sizes of TD3+BC and IQL (256-wide layers, batch 256) that
splitting costs more than it gains: one core per block of runs, with no threads shared
between them, trains more runs per second (docs/design.md, "CPU devices": TD3+BC 389 -> 566
aggregate steps/s on this project's 2-core CPU, 5 runs). :func:`split_cpu` asks JAX for
``n`` CPU devices and turns off Eigen's intra-op threads; the runs mesh
(:mod:`sparse_orl.trainer.sharding`) then gives each device its own block of runs, and
:func:`sparse_orl.trainer.runs.make_train_chunk` runs the blocks as one ``shard_map`` program.

Both settings are process-wide and fixed when JAX starts its backends, so this must be
called before any JAX computation; ``launch`` calls it from ``--cpu_devices``.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from sparse_orl.fields import check_fields, option
import importlib.metadata
import importlib.util
from jax._src import xla_bridge
import jax

# Eigen's intra-op thread pool off: each device's ops run on the thread that runs the device
_SINGLE_THREAD_FLAGS = ("--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under ``taskset``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def accelerator_installed() -> bool:
    """Whether a JAX GPU/TPU plugin is installed (then the CPU is not where runs train)."""

    if os.environ.get("JAX_PLATFORMS", "").strip().lower() in ("cpu",):
        return False
    if importlib.util.find_spec("libtpu") is not None:
        return True
    return any(True for _ in importlib.metadata.entry_points(group="jax_plugins"))


def auto_cpu_devices(num_runs: int, cores: Optional[int] = None, min_fill: float = 0.9) -> int:
    """``--cpu_devices=auto``: the most devices, at most one per usable core, over which the runs
    split with at most ``1 - min_fill`` of padding (the runs axis is padded to a multiple of the
    device count with copies that train for nothing); 1 where no split qualifies, or when a
    GPU/TPU plugin is installed.

    The split gains 1.07-1.42x on 2 cores (docs/design.md), so a split that pads 3 runs
    to 4 (75% useful) loses; at 90% useful a split is about break-even for the slowest-gaining
    algorithm (VAE-only BC, 1.07x) and a gain for the others (TD3+BC 1.42x).
    """
    cores = usable_cores() if cores is None else cores
    if cores < 2 or num_runs < 2 or accelerator_installed():
        return 1
    for n in range(min(cores, num_runs), 1, -1):
        if num_runs / (n * -(-num_runs // n)) >= min_fill:
            return n
    return 1


def backends_started() -> bool:

    return bool(xla_bridge.backends_are_initialized())


def split_cpu(n: int) -> None:
    """Make the host CPU ``n`` JAX devices with single-threaded ops (n = 1: leave JAX as it is).

    Raises ``ValueError`` for n < 1 and ``RuntimeError`` once JAX has started its backends
    with a different device count (the setting can no longer take effect).
    """
    if n < 1:
        raise ValueError(f"--cpu_devices must be >= 1 or 'auto', got {n}")
    if n == 1:
        return

    if backends_started():
        if jax.local_device_count("cpu") == n:
            return
        raise RuntimeError(f"--cpu_devices={n}: JAX has already started with "
                           f"{jax.local_device_count('cpu')} CPU device(s); set it before any JAX computation")
    jax.config.update("jax_num_cpu_devices", n)
    flags = os.environ.get("XLA_FLAGS", "").split()
    names = {f.split("=")[0] for f in flags}
    os.environ["XLA_FLAGS"] = " ".join(flags + [f for f in _SINGLE_THREAD_FLAGS if f.split("=")[0] not in names])


@dataclasses.dataclass(frozen=True)
class DeviceConfig:
    """Where a launcher's programs run: the CPU split into devices, or several hosts."""

    cpu_devices: str = option("auto", "Training on the CPU: split it into this many single-threaded JAX devices, "
                              "each training its own block of runs (1.1-1.4x on 2 cores). auto: as many as the "
                              "largest program's runs fill (at most one per core, at most 10% padding) when no "
                              "GPU/TPU plugin is installed.")
    distributed: bool = option(False, "Call jax.distributed.initialize() first (Cloud TPU pod slices, Slurm): "
                               "start the same command on every host, with a --workdir they all share.")
    coordinator_address: Optional[str] = option(None, "With --distributed: host:port of process 0 (default: "
                                                "auto-detected on Cloud TPU, Slurm, ...).")
    num_processes: Optional[int] = option(None, "With --distributed: number of processes (default: "
                                          "auto-detected).", low=1)
    process_id: Optional[int] = option(None, "With --distributed: this process's index (default: auto-detected).",
                                       low=0)

    def __post_init__(self):
        check_fields(self)
        value = self.cpu_devices.strip().lower()
        if value != "auto" and not (value.isdigit() and int(value) >= 1):
            raise ValueError(f"--cpu_devices must be a positive integer or 'auto', got {self.cpu_devices!r}")
        cluster = [f for f in ("coordinator_address", "num_processes", "process_id") if getattr(self, f) is not None]
        if cluster and not self.distributed:
            raise ValueError(f"--{cluster[0]} needs --distributed")


def apply_devices(cfg: DeviceConfig, runs_per_program: int) -> int:
    """Set up the devices before anything touches JAX: the CPU split (``cpu_devices``), then, with
    ``distributed``, ``jax.distributed.initialize()``. Returns the CPU device count chosen."""
    value = cfg.cpu_devices.strip().lower()
    n = (1 if cfg.distributed else auto_cpu_devices(runs_per_program)) if value == "auto" else int(value)
    try:
        split_cpu(n)
    except RuntimeError as e:
        raise ValueError(str(e)) from None
    if cfg.distributed:

        given = {f: getattr(cfg, f) for f in ("coordinator_address", "num_processes", "process_id")
                 if getattr(cfg, f) is not None}
        try:
            jax.distributed.initialize(**given)
        except (RuntimeError, ValueError) as e:  # e.g. no cluster to auto-detect outside TPU/Slurm
            hint = "" if given else (" (outside Cloud TPU / Slurm give --coordinator_address, --num_processes, "
                                     "--process_id)")
            raise ValueError(f"--distributed: jax.distributed.initialize() failed: {e}{hint}") from None
    return n
