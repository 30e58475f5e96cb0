"""The compact training format: each pruned kernel trains as its kept values plus fixed indices.

The masked format multiplies a 0/1 mask into a dense kernel, so a 95%-sparse network trains at the
dense network's cost. The compact format stores a pruned Dense kernel as a
:class:`~sparse_orl.kernels.CompactKernel` and multiplies with the CPU kernels of
:mod:`sparse_orl.kernels`: time, params, Adam's moments and the Polyak targets scale with the kept
weights. It is a second representation of the same masks (pruning at init is unchanged: scores on
the dense initial params, then :func:`to_compact`), and every output (final params, checkpoints
restored through the library, export) holds dense-shaped kernels with zeros at pruned positions.

``--sparse_format``: ``masked``; ``compact`` (every pruned kernel); ``auto`` (the default): on the CPU
with the kernels built, each pruned kernel runs compact where a short measurement of its forward and
backward pass at the job's batch size finds it faster than masked (:func:`plan_layers`), masked
elsewhere (GPU/TPU, no kernels, and kernels under ``MEASURE_MIN_WEIGHTS`` weights, not measured).
Runs of one program share one plan: a layer's kept
count is padded to the largest over the program's runs with inert entries.
"""
from __future__ import annotations

import functools
import time
from typing import Dict, List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_orl import kernels
from sparse_orl.pruning import default_prunable

FORMATS = ("auto", "masked", "compact")
# auto leaves layers below this many weights masked without measuring them: there both paths cost about one
# op's overhead (8x8 and 16x16 layers: 40-60 us either way at batch 100-256, differences within the
# measurement's noise), so the measurement's two compiles per shape would cost more than it could save
MEASURE_MIN_WEIGHTS = 1024
Path = Tuple[str, ...]


def backend_allows(fmt: str) -> Tuple[bool, str]:
    """(whether this process can train compact, why not): a CPU backend with the kernels built."""
    if fmt == "masked":
        return False, "--sparse_format=masked"
    if jax.default_backend() != "cpu":
        return False, f"the {jax.default_backend().upper()} backend (the compact kernels are CPU kernels)"
    if jax.process_count() > 1:  # the compact plan reads every run's masks on the host
        return False, f"{jax.process_count()} processes (--distributed; each holds only its own runs)"
    if not kernels.available():
        return False, f"the CPU kernels are unavailable ({kernels.unavailable_reason()})"
    return True, ""


def _get(tree, path: Path):
    for k in path:
        tree = tree[k]
    return tree


def _set(tree, path: Path, value):
    if not path:
        return value
    return {**tree, path[0]: _set(tree[path[0]], path[1:], value)}


def pruned_kernels(params, masks) -> List[Path]:
    """Paths of the kernels some run of the stack prunes (a leading runs axis on every leaf)."""
    out = []
    for kp, m in jax.tree_util.tree_flatten_with_path(masks)[0]:
        path = tuple(str(getattr(k, "key", k)) for k in kp)
        if default_prunable(kp, m[0]) and not bool(np.all(np.asarray(m) != 0)):
            out.append(path)
    return out


def _timed(fn, *args, reps: int = 5) -> float:
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


@functools.lru_cache(maxsize=256)
def measure(batch: int, n_in: int, n_out: int, k_max: int) -> Tuple[float, float]:
    """(masked, compact) seconds of one forward + backward pass of a (n_in, n_out) layer keeping k_max
    weights on ``batch`` rows: the loss sum(x W) differentiated in W's weights and in x."""
    rng = np.random.default_rng(0)
    keep = np.zeros(n_in * n_out, bool)
    keep[rng.choice(n_in * n_out, size=min(k_max, n_in * n_out), replace=False)] = True
    mask = jnp.asarray(keep.reshape(n_in, n_out), jnp.float32)
    w = jnp.asarray(rng.normal(size=(n_in, n_out)), jnp.float32) * mask
    x = jnp.asarray(rng.normal(size=(batch, n_in)), jnp.float32)
    ck = kernels.from_dense(w, mask, k_max)
    masked = jax.jit(jax.grad(lambda w_, x_: jnp.sum(jnp.tanh(x_ @ (w_ * mask))), argnums=(0, 1)))
    compact = jax.jit(jax.grad(lambda v, x_: jnp.sum(jnp.tanh(kernels.sparse_matmul(x_, v, ck.index))),
                               argnums=(0, 1)))
    return _timed(masked, w, x), _timed(compact, ck.values, x)


def plan_layers(params, masks, fmt: str, batch: int, log=lambda _m: None) -> Dict[str, Dict]:
    """{kernel path "actor/net/l1": {"k_max", "shape", "compact", ...}} for a stack of runs' params and
    masks (leading runs axis): which pruned kernels train compact. Empty when none can (see the module
    docstring for ``fmt``)."""
    ok, why = backend_allows(fmt)
    if not ok:
        return {}
    plan = {}
    for path in pruned_kernels(params, masks):
        m = np.asarray(_get(masks, path))
        n_in, n_out = m.shape[1:]
        k_max = int(max(1, (m.reshape(m.shape[0], -1) != 0).sum(1).max()))
        entry = {"shape": [int(n_in), int(n_out)], "k_max": k_max, "compact": fmt == "compact"}
        if fmt == "auto" and n_in * n_out < MEASURE_MIN_WEIGHTS:
            entry.update(small=True)
        elif fmt == "auto":
            t_masked, t_compact = measure(batch, int(n_in), int(n_out), k_max)
            entry.update(compact=t_compact < t_masked, masked_us=round(t_masked * 1e6, 1),
                         compact_us=round(t_compact * 1e6, 1))
        plan["/".join(path)] = entry
    return plan


def compact_paths(plan: Dict[str, Dict]) -> List[Tuple[Path, int]]:
    return [(tuple(k.split("/")), v["k_max"]) for k, v in plan.items() if v["compact"]]


def to_compact(algo, agent_states, plan: Dict[str, Dict]):
    """The stacked runs' train states (step 0) with the planned kernels compact: kept values plus indices,
    every run padded to the layer's k_max; targets and optimizer states rebuilt from them (zeros)."""
    paths = compact_paths(plan)
    if not paths:
        return agent_states

    def one(state):
        params, masks = state.params, state.dense_masks()
        for path, k_max in paths:
            params = _set(params, path, kernels.from_dense(_get(params, path), _get(masks, path), k_max))
        new = algo.init_state(params, masks, state.obs_mean, state.obs_std)
        return new.replace(step=state.step)

    return jax.jit(jax.vmap(one))(agent_states)


@jax.jit
def dense_view(agent_states):
    """(params, masks) of stacked train states with every compact kernel dense-shaped (zeros at pruned
    positions): what reports, final params and export hold in every format."""
    return jax.vmap(lambda s: (s.dense_params(), s.dense_masks()))(agent_states)


def describe(plan: Dict[str, Dict]) -> Optional[str]:
    """One line: which layers run compact ("compact layers: actor/net/l1 (256x256, 3,277 kept), ...")."""
    if not plan:
        return None
    on = [f"{k.removesuffix('/kernel')} ({v['shape'][0]}x{v['shape'][1]}, {v['k_max']:,} kept)"
          for k, v in plan.items() if v["compact"]]
    off = [k.removesuffix("/kernel") for k, v in plan.items() if not v["compact"] and not v.get("small")]
    small = [k.removesuffix("/kernel") for k, v in plan.items() if v.get("small")]
    text = "compact layers: " + (", ".join(on) if on else "none")
    if off:
        text += f"; masked (measured no faster compact): {', '.join(off)}"
    if small:
        text += f"; masked (under {MEASURE_MIN_WEIGHTS:,} weights, not measured): {', '.join(small)}"
    return text
