"""Many runs in one program: a leading runs axis, ``vmap`` over runs, ``lax.scan`` over steps.

(On a single CPU device the runs are taken in turn, ``lax.map``, inside the same program:
see :func:`resolve_runs_loop`.)

Runs are (seed, sparsity) pairs. Their states are stacked along axis 0 and, when
several devices are visible, sharded along that axis over a 1-D device mesh;
the dataset is replicated. A run whose losses turn non-finite is frozen (its
state is reset to the start of the chunk in which it broke and never advances
again) and flagged with the step where it broke.

Placing runs on devices and hosts: :mod:`sparse_orl.trainer.sharding`. The algorithm is any
:class:`sparse_orl.algos.Algorithm`; runs start from :func:`sparse_orl.trainer.initialize.init_state`.
"""
from __future__ import annotations

import functools
from typing import Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, PartitionSpec as P

from sparse_orl.algos.base import Algorithm, TrainState
from sparse_orl.config.prune import PruneConfig
from sparse_orl.data.transitions import Transitions, sample_batch
from sparse_orl.trainer.initialize import init_state
from sparse_orl.trainer.sharding import replicated, runs_sharding


@struct.dataclass
class RunState:
    agent: TrainState
    key: jax.Array  # raw uint32 PRNG key data of this run's training stream
    nan_step: jax.Array  # int32: step at which the loss first turned non-finite, -1 if never
    subset: Optional[jax.Array] = None  # int32 rows of the data this run trains on (None: all)


def init_runs(agent: Algorithm, prune: PruneConfig, data: Transitions, seeds, sparsities,
              obs_mean=None, obs_std=None, mesh: Optional[Mesh] = None, subsets=None) -> RunState:
    """Initial :class:`RunState` for each (seed, sparsity) pair, stacked on axis 0.

    The run key is ``PRNGKey(seed)``; init, pruning and training streams are
    split from it, so equal seeds share initial weights and the data order
    across sparsity levels (paired comparisons). With ``mesh``, the number of runs
    must be a multiple of its size (see ``sharding.padded_num_runs``).

    ``obs_mean`` / ``obs_std``: (obs_dim,) shared by every run, or (runs, obs_dim) per run.
    ``subsets``: (runs, N) int32 rows of ``data`` each run trains and scores on (None: all rows).
    """
    prune.check_networks(tuple(agent.networks), agent.config.display_name)  # before tracing: one clean line
    seeds = jnp.asarray(np.asarray(seeds, np.uint32))
    sparsities = jnp.asarray(np.asarray(sparsities, np.float32))
    if obs_mean is None:
        obs_mean = jnp.zeros((agent.obs_dim,), jnp.float32)
        obs_std = jnp.ones((agent.obs_dim,), jnp.float32)
    per_run = np.ndim(obs_mean) == 2
    args = [data, seeds, sparsities, jnp.asarray(obs_mean, jnp.float32), jnp.asarray(obs_std, jnp.float32)]
    if subsets is not None:
        args.append(jnp.asarray(np.asarray(subsets, np.int32)))
    return _init_fn(agent, prune, mesh, per_run, subsets is not None)(*args)


@functools.lru_cache(maxsize=32)
def _init_fn(agent: Algorithm, prune: PruneConfig, mesh: Optional[Mesh], per_run_stats: bool = False,
             with_subsets: bool = False):
    def one(data, seed, sparsity, obs_mean, obs_std, subset=None):
        key = jax.random.PRNGKey(seed)
        k_agent, k_train = jax.random.split(key)
        state = init_state(agent, k_agent, data, prune, sparsity, obs_mean, obs_std, subset)
        return RunState(state, k_train, jnp.int32(-1), subset)

    stats_axis = 0 if per_run_stats else None
    in_axes = (None, 0, 0, stats_axis, stats_axis) + ((0,) if with_subsets else ())
    fn = jax.vmap(one, in_axes=in_axes)
    if mesh is None:
        return jax.jit(fn)
    # each device initializes its own block of runs: partitioned by GSPMD instead, the host
    # callback of the orthogonal init (networks.orthogonal_init) sat inside a cross-device
    # all-reduce that never completed (a 2-CPU-device abort)
    spec = runs_sharding(mesh).spec
    stats_spec = spec if per_run_stats else P()
    in_specs = (P(), spec, spec, stats_spec, stats_spec) + ((spec,) if with_subsets else ())
    per_device = jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=spec, check_vma=False)
    return jax.jit(per_device, out_shardings=runs_sharding(mesh))


def _finite(metrics: Dict[str, jax.Array]) -> jax.Array:
    return functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(v)) for v in metrics.values()])


def resolve_runs_loop(runs_loop: str, mesh: Optional[Mesh] = None) -> str:
    """"auto" -> "map" on CPU devices, else "vmap": how each device takes its runs (see :func:`make_train_chunk`).

    On CPU one run's matmuls already fill the device's threads, and runs taken in turn
    keep their weights and Adam moments in cache: 32.3 vs 25.8 aggregate BCQ steps/s
    with 40 runs on 2 cores (docs/results/speed). Accelerators need the batched
    matmuls of "vmap". With a mesh, the loop is per device (each device its own block).
    """
    if runs_loop not in ("auto", "vmap", "map"):
        raise ValueError(f"runs_loop must be 'auto', 'vmap' or 'map', got {runs_loop!r}")
    if runs_loop == "auto":
        platform = mesh.devices.flat[0].platform if mesh is not None else jax.default_backend()
        return "map" if platform == "cpu" else "vmap"
    return runs_loop


@functools.lru_cache(maxsize=32)
def make_train_chunk(agent: Algorithm, batch_size: int, num_steps: Optional[int], mesh: Optional[Mesh] = None,
                     unroll: int = 1, runs_loop: str = "auto"):
    """jit(vmap(scan)) (or jit(map(scan)), see ``runs_loop``): ``num_steps`` train steps for every run.

    Returns ``chunk(runs: RunState, data: Transitions) -> (runs, metrics)`` where
    metrics are per-run means over the chunk (plus "nan_step"). Batches are
    sampled from the on-device dataset inside the scan: no host sync per step.
    The input run states are donated.

    ``num_steps=None`` compiles one program for any length:
    ``chunk(runs, data, n)`` takes ``n`` (an int32 scalar) steps, a ``while`` loop
    instead of a ``scan``, with exactly the same per-step computation (the run's key
    is carried, so k chunks of n steps give the same state as one of k·n). The
    experiment loop uses it to size its chunks by wall time.

    ``runs_loop``: "vmap" batches the runs into every matmul (what fills a GPU/TPU);
    "map" runs them one after another inside the same program (``lax.map``), each
    for the whole chunk, so one run's weights and Adam moments stay in cache: for a
    CPU whose cores one run already fills. Same results up to float rounding.
    "auto" (default): :func:`resolve_runs_loop`.

    ``mesh``: the runs axis is split over its devices and every device runs its own
    block with the same loop (``shard_map``): no traffic between devices inside a
    chunk. This is also how a CPU split into single-threaded devices (one per core,
    :func:`sparse_orl.trainer.devices.split_cpu`) runs two blocks of runs at once.
    """
    runs_loop = resolve_runs_loop(runs_loop, mesh)

    def run_one(rs: RunState, data: Transitions, n, step0=None):
        # ``step0``: under vmap, the step the program's runs share (unbatched). The agent
        # sees it as ``state.step``, so a ``lax.cond`` on the step (TD3+BC's policy delay)
        # stays a branch; on a batched step vmap turns it into a select that computes both
        # branches every step.
        def body(carry):
            agent_state, key, nan_step, sums, t = carry
            if t is not None:
                agent_state = agent_state.replace(step=t)
            key, k_batch, k_step = jax.random.split(key, 3)
            batch = sample_batch(data, k_batch, batch_size, rs.subset)
            new_agent, metrics = agent.train_step(agent_state, batch, k_step)
            ok = _finite(metrics)
            nan_step = jnp.where((nan_step < 0) & ~ok, agent_state.step, nan_step)
            sums = {k: sums[k] + metrics[k] for k in sums}
            return new_agent, key, nan_step, sums, None if t is None else t + 1

        zero = {k: jnp.zeros((), jnp.float32) for k in agent.metric_names}
        init = (rs.agent, rs.key, rs.nan_step, zero, step0)
        if num_steps is None:
            agent_state, key, nan_step, sums, _ = jax.lax.fori_loop(0, n, lambda _i, c: body(c), init)
            denom = jnp.maximum(n, 1).astype(jnp.float32)
        else:
            (agent_state, key, nan_step, sums, _), _ = jax.lax.scan(lambda c, _: (body(c), None), init, None,
                                                                    length=num_steps, unroll=unroll)
            denom = num_steps
        # A broken run is frozen at the state it had when this chunk began: one select per
        # chunk instead of one per step (a full pass over params and Adam moments).
        # Runs are independent under vmap, so its NaNs never reach the other runs.
        broken = nan_step >= 0
        agent_state = jax.tree_util.tree_map(lambda n_, o: jnp.where(broken, o, n_), agent_state, rs.agent)
        metrics = {k: jnp.where(broken, jnp.nan, v / denom) for k, v in sums.items()}
        metrics["nan_step"] = nan_step
        return RunState(agent_state, key, nan_step, rs.subset), metrics

    if runs_loop == "map":
        def fn(runs, data, n=None):
            return jax.lax.map(lambda rs: run_one(rs, data, n), runs)
    else:
        def fn(runs, data, n=None):
            # The runs of a program step in lockstep; a diverged run is frozen behind
            # (its state is reset every chunk), so the healthy runs' step is the largest.
            step0 = jnp.max(runs.agent.step)
            return jax.vmap(run_one, in_axes=(0, None, None, None))(runs, data, n, step0)
    if num_steps is not None:
        fixed = fn
        fn = lambda runs, data: fixed(runs, data)  # noqa: E731
    return _compiled(fn, mesh, num_steps is not None)


def _compiled(fn, mesh: Optional[Mesh], fixed_steps: bool):
    """``jit(fn)``, or with a mesh each device running ``fn`` on its own block of runs; run states donated."""
    if mesh is None:
        return jax.jit(fn, donate_argnums=(0,))
    runs_spec = runs_sharding(mesh).spec
    in_specs = (runs_spec, P()) if fixed_steps else (runs_spec, P(), P())
    # no collectives inside: replication ("vma") checks would only make every algorithm's
    # lax.cond branches annotate which outputs vary per device
    per_device = jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=(runs_spec, runs_spec), check_vma=False)
    rs_sh, rep = runs_sharding(mesh), replicated(mesh)
    in_sh = (rs_sh, rep) if fixed_steps else (rs_sh, rep, rep)
    return jax.jit(per_device, in_shardings=in_sh, out_shardings=(rs_sh, rs_sh), donate_argnums=(0,))


@functools.lru_cache(maxsize=32)
def make_act_fn(agent: Algorithm):
    """jit(vmap(act)): actions for obs (runs, envs, obs_dim) from every run's params."""

    def one(params, obs_mean, obs_std, obs, key):
        return agent.act(params, obs_mean, obs_std, obs, key)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, 0)))


def take_runs(tree, idx):
    """Rows ``idx`` of every leaf (host numpy)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[idx], tree)
