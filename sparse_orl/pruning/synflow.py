"""SynFlow: data-free, iterative pruning at init against layer collapse (Tanaka et al. 2020).

Score S(θ) = (∂R/∂θ) ⊙ θ with the synaptic flow R = 1ᵀ(∏_l |W_l|)1: a forward
pass of the *linearized* network (absolute kernels, inputs of ones; with every
activation nonnegative a ReLU is the identity) summed over the outputs. The
reference (``ganguli-lab/Synaptic-Flow`` ``Pruners/pruners.py``, ``SynFlow``)
also takes |b| of the biases into the forward pass; here biases are left out
(zero in the scoring pass, never pruned) so that R is exactly the paper's
1ᵀ(∏|W_l|)1. With |θ| in the pass, S_j = |θ_j|·∂R/∂|θ_j| >= 0.

A network is described by *paths* of *stages*: a stage is a tuple of kernel
key-paths that read the same input; only the last stage may hold several
kernels (parallel heads, whose outputs are all summed into R). A path's input
is a vector of ones of the first kernel's fan-in. MLPs are one path; the VAE is
two: the encoder [s, a] → e1 → e2 → (mean, log_std) and the decoder [s, z] →
d1 → d2 → d3 (see ``Agent.network_paths``). The VAE is not chained through z,
because the linearized encoder output (~10²–10³ at init) would multiply every
latent-row weight of d1 and bias the decoder toward the latent path.

Float32 and normalization. R is a product over layers and can overflow or
underflow in deep/wide nets. Each stage's activation is divided by a
stop-gradient positive constant (its mean), and each path's R by its own value.
Why this does not change the ranking: R is linear in each layer's |W_l|, so
multiplying the activation after layer l by a constant c (held fixed under
differentiation) multiplies R, hence ∂R/∂θ_j for EVERY weight on that path and
θ_j itself unchanged, by the same c: all scores of the path scale by
∏ c, a single positive factor, and the ranking inside the path is unchanged.
(Per-layer rescaling of the *weights* |W_l| → c_l|W_l| likewise scales every
score on the path by ∏_l c_l.) It is NOT rank-invariant across separate paths
or across parallel heads scaled differently, and not with biases in R (the bias
terms do not scale with upstream layers). Hence: heads of one stage share the
constant; separate paths are each normalized to total flow 1, a stated choice:
by SynFlow's conservation law every layer of a path carries total score R, so
with R = 1 per path every VAE layer (encoder or decoder; the two heads
together) carries total score 1, as in one MLP, and the global ranking over the
VAE treats the encoder and the decoder alike.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_orl.pruning.masks import Prunable, _key_name, map_prunable, prunable_flags

KeyPath = Tuple[str, ...]
Stage = Tuple[KeyPath, ...]
Path = Tuple[Stage, ...]

_TINY = 1e-30


def get_kernel(params, key: KeyPath):
    """The leaf at ``key``, or the ``kernel`` of the module dict at ``key``."""
    node = params
    for k in key:
        node = node[k]
    return node["kernel"] if isinstance(node, Mapping) else node


def _kernel_ids(params, paths: Sequence[Path]):
    ids = set()
    for path in paths:
        for i, stage in enumerate(path):
            if len(stage) > 1 and i != len(path) - 1:
                raise ValueError(f"only the last stage of a path may hold several kernels, got {path}")
            for key in stage:
                ids.add(id(get_kernel(params, key)))
    return ids


def check_paths_cover(params, paths: Sequence[Path], *, prunable: Optional[Prunable] = None) -> None:
    """Raise if a prunable leaf is on no path (its SynFlow score would be 0: pruned first)."""
    ids = _kernel_ids(params, paths)
    flags = prunable_flags(params, prunable)
    for (kp, leaf), f in zip(jax.tree_util.tree_flatten_with_path(params)[0], flags):
        if f and id(leaf) not in ids:
            raise ValueError(f"SynFlow paths miss the kernel at {jax.tree_util.keystr(kp)}")


def _path_flow(params, path: Path, normalize: bool):
    first = get_kernel(params, path[0][0])
    h = jnp.ones((first.shape[0],), jnp.float32)
    for stage in path[:-1]:
        h = h @ get_kernel(params, stage[0])
        if normalize:
            h = h / jax.lax.stop_gradient(jnp.maximum(jnp.mean(h), _TINY))
    r = sum(jnp.sum(h @ get_kernel(params, key)) for key in path[-1])
    if normalize:
        r = r / jax.lax.stop_gradient(jnp.maximum(r, _TINY))
    return r


def synaptic_flow(params, paths: Sequence[Path], normalize: bool = False):
    """R = Σ_paths 1ᵀ(∏|W_l|)1 of ``params`` taken as they are (callers pass |θ|)."""
    return sum(_path_flow(params, p, normalize) for p in paths)


def synflow_scores(params, paths: Sequence[Path], normalize: bool = True, *,
                   prunable: Optional[Prunable] = None):
    """SynFlow scores |θ| ⊙ ∂R/∂|θ| of one network's params (biases: 0, never pruned).

    ``normalize=False`` gives the raw scores of R = Σ_paths 1ᵀ(∏|W_l|)1;
    ``normalize=True`` the same ranking within each path with every path's
    flow scaled to 1 (see the module docstring). Every prunable leaf (ndim >= 2,
    or selected by ``prunable(path, leaf)``) must lie on a path; the others
    score 0.
    """
    check_paths_cover(params, paths, prunable=prunable)
    abs_p = jax.tree_util.tree_map(lambda x: jnp.abs(x).astype(jnp.float32), params)
    grads = jax.grad(lambda p: synaptic_flow(p, paths, normalize))(abs_p)
    return map_prunable(lambda p, g: p * g, lambda p, g: jnp.zeros_like(p), abs_p, grads,
                        prunable=prunable)


def mlp_paths(net_params, prefix: KeyPath = ()) -> Tuple[Path, ...]:
    """One path through layers l1, l2, ... of an ``MLP`` param dict (``prefix`` leads to it)."""
    names = sorted((k for k in net_params if k.startswith("l") and k[1:].isdigit()), key=lambda k: int(k[1:]))
    return (tuple((prefix + (n,),) for n in names),)


def sequential_paths(names: Sequence[str], heads: Sequence[str] = ()) -> Path:
    """A path through kernels ``names`` in order, then the parallel ``heads`` (if any)."""
    stages = [((n,),) for n in names]
    if heads:
        stages.append(tuple((h,) for h in heads))
    return tuple(stages)


def _walk_in_order(tree, prefix=()):
    """(key path, leaf) pairs with dicts walked in insertion order (Flax: module creation order).

    ``tree_flatten_with_path`` sorts dict keys ("l10" before "l2"), which is not
    the order in which layers are applied; other containers are flattened by jax.
    """
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            yield from _walk_in_order(v, prefix + (jax.tree_util.DictKey(k),))
    else:
        for kp, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            yield prefix + tuple(kp), leaf


def _stage_key(kp) -> KeyPath:
    """Key path as :func:`get_kernel` reads it: the module of a ``kernel``, else the leaf itself."""
    names = tuple(_key_name(e) for e in kp)
    return names[:-1] if names and names[-1] == "kernel" else names


def chain_paths(params, *, prunable: Optional[Prunable] = None) -> Tuple[Path, ...]:
    """One feed-forward path through the prunable kernels of ``params`` in insertion order.

    The kernels must be 2-D and chain: each one's output width ``shape[-1]``
    is the next one's fan-in ``shape[0]``. For an ``MLP`` ``{"net": {"l1", ...}}``
    this equals ``mlp_paths(params["net"], ("net",))``. Anything else (a conv
    kernel, branches, an embedding feeding a flattened Dense) raises
    ``ValueError`` naming the first leaf that breaks the chain: describe such a
    network with explicit paths (:func:`sequential_paths`) instead.
    """
    flag = (lambda kp, x: np.ndim(x) >= 2) if prunable is None else prunable
    kernels = [(kp, x) for kp, x in _walk_in_order(params) if flag(kp, x)]
    if not kernels:
        raise ValueError("cannot infer a SynFlow path: the params hold no prunable kernel")
    prev = None
    for kp, x in kernels:
        where = jax.tree_util.keystr(tuple(kp))
        if np.ndim(x) != 2:
            raise ValueError(
                f"cannot infer a SynFlow path: the prunable leaf at {where} has shape {np.shape(x)}; "
                "the linearized SynFlow pass takes 2-D (dense) kernels only. Pass paths= explicitly, "
                "exclude the leaf with prunable=, or use another method.")
        if prev is not None and np.shape(prev[1])[-1] != np.shape(x)[0]:
            raise ValueError(
                f"cannot infer a SynFlow path: the prunable leaf at {where} (shape {np.shape(x)}) does "
                f"not take the output of {jax.tree_util.keystr(tuple(prev[0]))} (shape "
                f"{np.shape(prev[1])}) as its input. Pass paths= explicitly for this network.")
        prev = (kp, x)
    return (tuple((_stage_key(kp),) for kp, _ in kernels),)


def _np_flow_reference(kernels: Sequence[np.ndarray]) -> float:
    """1ᵀ(∏|W_l|)1 on the host (float64), for tests."""
    h = np.ones(kernels[0].shape[0])
    for w in kernels:
        h = h @ np.abs(np.asarray(w, np.float64))
    return float(h.sum())
