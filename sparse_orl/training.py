"""Many runs in one program: a leading runs axis, ``vmap`` over runs, ``lax.scan`` over steps.

(On a single CPU device the runs are taken in turn, ``lax.map``, inside the same program:
see :func:`resolve_runs_loop`.)

Runs are (seed, sparsity) pairs. Their states are stacked along axis 0 and, when
several devices are visible, sharded along that axis over a 1-D device mesh;
the dataset is replicated. A run whose losses turn non-finite is frozen (its
state is reset to the start of the chunk in which it broke and never advances
again) and flagged with the step where it broke.

Several processes (``jax.distributed.initialize()``, e.g. the hosts of a TPU pod
slice): the mesh spans ``jax.devices()`` of every process, each process builds
the same host values (deterministic from the seeds) and fills only its own
shards (:func:`to_global`); values needed on the host are gathered with
:func:`to_host`; :func:`local_runs` gives the runs one process's devices hold.
With one process these reduce to ``jax.device_put`` / ``jax.device_get`` / all runs.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sparse_orl.algos.agent import Agent, AgentState
from sparse_orl.config import PruneConfig
from sparse_orl.data.transitions import Transitions, sample_batch


@struct.dataclass
class RunState:
    agent: AgentState
    key: jax.Array  # raw uint32 PRNG key data of this run's training stream
    nan_step: jax.Array  # int32: step at which the loss first turned non-finite, -1 if never


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


def init_runs(agent: Agent, prune: PruneConfig, data: Transitions, seeds, sparsities,
              obs_mean=None, obs_std=None, mesh: Optional[Mesh] = None) -> RunState:
    """Initial :class:`RunState` for each (seed, sparsity) pair, stacked on axis 0.

    The run key is ``PRNGKey(seed)``; init, pruning and training streams are
    split from it, so equal seeds share initial weights and the data order
    across sparsity levels (paired comparisons).
    """
    seeds = jnp.asarray(np.asarray(seeds, np.uint32))
    sparsities = jnp.asarray(np.asarray(sparsities, np.float32))
    if obs_mean is None:
        obs_mean = jnp.zeros((agent.obs_dim,), jnp.float32)
        obs_std = jnp.ones((agent.obs_dim,), jnp.float32)
    return _init_fn(agent, prune, mesh)(data, seeds, sparsities, jnp.asarray(obs_mean, jnp.float32),
                                        jnp.asarray(obs_std, jnp.float32))


@functools.lru_cache(maxsize=32)
def _init_fn(agent: Agent, prune: PruneConfig, mesh: Optional[Mesh]):
    def one(data, seed, sparsity, obs_mean, obs_std):
        key = jax.random.PRNGKey(seed)
        k_agent, k_train = jax.random.split(key)
        state = agent.init(k_agent, data, prune, sparsity, obs_mean, obs_std)
        return RunState(state, k_train, jnp.int32(-1))

    fn = jax.vmap(one, in_axes=(None, 0, 0, None, None))
    if mesh is None:
        return jax.jit(fn)
    return jax.jit(fn, out_shardings=runs_sharding(mesh))


def _finite(metrics: Dict[str, jax.Array]) -> jax.Array:
    return functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(v)) for v in metrics.values()])


def resolve_runs_loop(runs_loop: str, mesh: Optional[Mesh] = None) -> str:
    """"auto" -> "map" on a single CPU device, else "vmap" (see :func:`make_train_chunk`).

    On CPU one run's matmuls already fill the cores, and runs taken in turn keep
    their weights and Adam moments in cache: 32.3 vs 25.8 aggregate BCQ steps/s
    with 40 runs on 2 cores (BUILD_NOTES, issue 4). Accelerators and multi-device
    meshes need the batched matmuls of "vmap".
    """
    if runs_loop not in ("auto", "vmap", "map"):
        raise ValueError(f"runs_loop must be 'auto', 'vmap' or 'map', got {runs_loop!r}")
    if mesh is not None and mesh.devices.size > 1:
        return "vmap"
    if runs_loop == "auto":
        return "map" if jax.default_backend() == "cpu" else "vmap"
    return runs_loop


@functools.lru_cache(maxsize=32)
def make_train_chunk(agent: Agent, batch_size: int, num_steps: int, mesh: Optional[Mesh] = None,
                     unroll: int = 1, runs_loop: str = "auto"):
    """jit(vmap(scan)) (or jit(map(scan)), see ``runs_loop``): ``num_steps`` train steps for every run.

    Returns ``chunk(runs: RunState, data: Transitions) -> (runs, metrics)`` where
    metrics are per-run means over the chunk (plus "nan" flags). Batches are
    sampled from the on-device dataset inside the scan: no host sync per step.
    The input run states are donated.

    ``runs_loop``: "vmap" batches the runs into every matmul (what fills a GPU/TPU);
    "map" runs them one after another inside the same program (``lax.map``), each
    for the whole chunk, so one run's weights and Adam moments stay in cache: for a
    CPU whose cores one run already fills. Same results up to float rounding.
    "auto" (default): :func:`resolve_runs_loop`. Meshes of several devices always
    use "vmap".
    """
    runs_loop = resolve_runs_loop(runs_loop, mesh)

    def run_one(rs: RunState, data: Transitions):
        def body(carry, _):
            agent_state, key, nan_step, sums = carry
            key, k_batch, k_step = jax.random.split(key, 3)
            batch = sample_batch(data, k_batch, batch_size)
            new_agent, metrics = agent.train_step(agent_state, batch, k_step)
            ok = _finite(metrics)
            nan_step = jnp.where((nan_step < 0) & ~ok, agent_state.step, nan_step)
            sums = {k: sums[k] + metrics[k] for k in sums}
            return (new_agent, key, nan_step, sums), None

        zero = {k: jnp.zeros((), jnp.float32) for k in _metric_names(agent)}
        init = (rs.agent, rs.key, rs.nan_step, zero)
        (agent_state, key, nan_step, sums), _ = jax.lax.scan(body, init, None, length=num_steps, unroll=unroll)
        # A broken run is frozen at the state it had when this chunk began: one select per
        # chunk instead of one per step (a full pass over params and Adam moments).
        # Runs are independent under vmap, so its NaNs never reach the other runs.
        broken = nan_step >= 0
        agent_state = jax.tree_util.tree_map(lambda n, o: jnp.where(broken, o, n), agent_state, rs.agent)
        metrics = {k: jnp.where(broken, jnp.nan, v / num_steps) for k, v in sums.items()}
        metrics["nan_step"] = nan_step
        return RunState(agent_state, key, nan_step), metrics

    if runs_loop == "map":
        def fn(runs, data):
            return jax.lax.map(lambda rs: run_one(rs, data), runs)
    else:
        fn = jax.vmap(run_one, in_axes=(0, None))
    if mesh is None:
        return jax.jit(fn, donate_argnums=(0,))
    rs_sh, rep = runs_sharding(mesh), replicated(mesh)
    return jax.jit(fn, in_shardings=(rs_sh, rep), out_shardings=(rs_sh, rs_sh), donate_argnums=(0,))


def _metric_names(agent: Agent) -> Tuple[str, ...]:
    if agent.config.vae_only:
        return ("vae_loss",)
    return ("vae_loss", "critic_loss", "actor_loss")


@functools.lru_cache(maxsize=32)
def make_act_fn(agent: Agent):
    """jit(vmap(act)): actions for obs (runs, envs, obs_dim) from every run's params."""

    def one(params, obs_mean, obs_std, obs, key):
        return agent.act(params, obs_mean, obs_std, obs, key)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, 0)))


def take_runs(tree, idx):
    """Rows ``idx`` of every leaf (host numpy)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[idx], tree)
