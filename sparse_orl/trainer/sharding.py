"""Runs spread over devices and hosts: a 1-D "runs" mesh, placing host values on it, gathering back.

Several processes (``jax.distributed.initialize()``, e.g. the hosts of a TPU pod slice):
the mesh spans ``jax.devices()`` of every process, each process builds the same host
values (deterministic from the seeds) and fills only its own shards (:func:`to_global`);
values needed on the host are gathered with :func:`to_host`; :func:`local_runs` gives the
runs one process's devices hold. With one process these reduce to ``jax.device_put`` /
``jax.device_get`` / all runs.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def runs_mesh(devices: Optional[Sequence] = None) -> Mesh:
    """1-D mesh named "runs" over ``devices`` (default: all devices, all hosts)."""
    devices = np.asarray(devices if devices is not None else jax.devices())
    return Mesh(devices, ("runs",))


def runs_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("runs"))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def to_global(tree: Any, sharding: NamedSharding) -> Any:
    """Place ``tree`` (a host value, the same on every process) with ``sharding``.

    One process: ``jax.device_put``. Several: every process builds each array from
    its own host copy, filling only the shards on its own devices
    (``jax.make_array_from_callback``): nothing moves between processes.
    """
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def one(x):
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

    return jax.tree_util.tree_map(one, tree)


def to_host(tree: Any) -> Any:
    """Full value of every leaf as host numpy.

    One process: ``jax.device_get`` (no extra copy). Several: arrays sharded over
    all processes are gathered with ``process_allgather``, a collective, so every
    process must call this at the same point.
    """
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def local_runs(tree: Any) -> Tuple[np.ndarray, Any]:
    """The runs held by this process's devices: ``(global run indices (ascending), tree)``.

    ``tree``'s leaves are sharded on axis 0 over the runs mesh. One process: all runs,
    ``tree`` unchanged. Several: each leaf becomes a process-local array of this
    process's rows, sharded over a mesh of its local devices with the same per-device
    blocks, so jitted functions run on them exactly as on the global array's shards.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    n = leaves[0].shape[0]
    if jax.process_count() == 1:
        return np.arange(n), tree

    def shards(x):  # this process's shards of x, in the order of their rows
        return sorted(x.addressable_shards, key=lambda s: s.index[0].indices(n)[0])

    first = shards(leaves[0])
    rows = [np.arange(*s.index[0].indices(n)) for s in first]
    idx = np.concatenate(rows)
    devices = [s.device for s in first]
    if len(np.unique(idx)) != len(idx):
        raise ValueError("local_runs needs leaves sharded over the runs axis, not replicated")
    sharding = NamedSharding(Mesh(np.asarray(devices), ("runs",)), P("runs"))

    def one(x):
        sh = shards(x)
        if [s.device for s in sh] != devices:
            raise ValueError("local_runs needs every leaf sharded the same way")
        return jax.make_array_from_single_device_arrays((len(idx),) + x.shape[1:], sharding,
                                                        [s.data for s in sh])

    return idx, jax.tree_util.tree_unflatten(treedef, [one(x) for x in leaves])


def padded_num_runs(num_runs: int, mesh: Mesh) -> int:
    """Smallest multiple of the mesh size >= ``num_runs`` (extra runs are copies, dropped later)."""
    d = mesh.devices.size
    return -(-num_runs // d) * d


def gather_returns(returns: np.ndarray, idx: np.ndarray, r_pad: int) -> np.ndarray:
    """Every process's evaluation returns (rows: its runs ``idx``, the real ones first), as
    ``(r_pad, episodes)`` on every process; rows of padding runs are NaN. A collective.

    float64 returns travel as pairs of uint32 (without jax_enable_x64 they would be cut
    to float32): every process ends with exactly the values its owner computed.
    """
    full = np.full((len(idx), returns.shape[1]), np.nan, np.float64)
    full[:len(returns)] = returns
    bits, where = multihost_utils.process_allgather(
        (np.ascontiguousarray(full).view(np.uint32), np.asarray(idx, np.int32)), tiled=False)
    out = np.full((r_pad, returns.shape[1]), np.nan, np.float64)
    out[np.asarray(where).reshape(-1)] = np.ascontiguousarray(bits).reshape(-1, bits.shape[-1]).view(np.float64)
    return out
