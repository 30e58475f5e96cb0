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

from typing import Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_orl.pruning.masks import is_prunable

KeyPath = Tuple[str, ...]
Stage = Tuple[KeyPath, ...]
Path = Tuple[Stage, ...]

_TINY = 1e-30


def get_kernel(params, key: KeyPath):
    node = params
    for k in key:
        node = node[k]
    return node["kernel"] if isinstance(node, dict) else node


def _kernel_ids(params, paths: Sequence[Path]):
    ids = set()
    for path in paths:
        for i, stage in enumerate(path):
            if len(stage) > 1 and i != len(path) - 1:
                raise ValueError(f"only the last stage of a path may hold several kernels, got {path}")
            for key in stage:
                ids.add(id(get_kernel(params, key)))
    return ids


def check_paths_cover(params, paths: Sequence[Path]) -> None:
    """Raise if a prunable leaf is on no path (its SynFlow score would be 0: pruned first)."""
    ids = _kernel_ids(params, paths)
    for kp, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if is_prunable(leaf) and id(leaf) not in ids:
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


def synflow_scores(params, paths: Sequence[Path], normalize: bool = True):
    """SynFlow scores |θ| ⊙ ∂R/∂|θ| of one network's params (biases: 0, never pruned).

    ``normalize=False`` gives the raw scores of R = Σ_paths 1ᵀ(∏|W_l|)1;
    ``normalize=True`` the same ranking within each path with every path's
    flow scaled to 1 (see the module docstring).
    """
    check_paths_cover(params, paths)
    abs_p = jax.tree_util.tree_map(lambda x: jnp.abs(x).astype(jnp.float32), params)
    grads = jax.grad(lambda p: synaptic_flow(p, paths, normalize))(abs_p)
    return jax.tree_util.tree_map(
        lambda p, g: p * g if is_prunable(p) else jnp.zeros_like(p), abs_p, grads
    )


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


def _np_flow_reference(kernels: Sequence[np.ndarray]) -> float:
    """1ᵀ(∏|W_l|)1 on the host (float64), for tests."""
    h = np.ones(kernels[0].shape[0])
    for w in kernels:
        h = h @ np.abs(np.asarray(w, np.float64))
    return float(h.sum())
