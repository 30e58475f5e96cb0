"""Param trees with compact kernels: a pruned Dense kernel held as its kept values plus fixed indices.

In the compact training format (:mod:`sparse_orl.trainer.compact`) a kernel leaf of the params is a
:class:`~sparse_orl.kernels.CompactKernel` ``(values, index)`` instead of a dense (in, out) array;
:func:`sparse_orl.algos.networks.dense` multiplies by it with the sparse kernels. Only ``values``
train: :func:`split` separates them from the indices for the gradient and the optimizer, and
:func:`values_masks` gives the optimizer's mask of each values vector (1 for kept entries, 0 for
the padding that equalizes counts across runs), so padding stays exactly 0. :func:`densify` turns
a tree back into the dense-shaped kernels (zeros at pruned positions) that every output holds.
Trees without compact kernels pass through unchanged.
"""
from __future__ import annotations

from typing import Any, Callable, Tuple

import jax
import jax.numpy as jnp

from sparse_orl.kernels import CompactKernel, mask_of, to_dense


def is_compact(x) -> bool:
    return isinstance(x, CompactKernel)


def has_compact(tree) -> bool:
    return any(is_compact(x) for x in jax.tree_util.tree_leaves(tree, is_leaf=is_compact))


def split(params) -> Tuple[Any, Callable[[Any], Any]]:
    """(the trainable tree: each compact kernel replaced by its values, ``rebuild(values_tree) -> params``)."""
    if not has_compact(params):
        return params, lambda v: v
    leaves, treedef = jax.tree_util.tree_flatten(params, is_leaf=is_compact)
    values = [x.values if is_compact(x) else x for x in leaves]
    index = [x.index if is_compact(x) else None for x in leaves]

    def rebuild(values_tree):
        vs = treedef.flatten_up_to(values_tree)
        return jax.tree_util.tree_unflatten(treedef, [CompactKernel(v, i) if i is not None else v
                                                      for v, i in zip(vs, index)])

    return jax.tree_util.tree_unflatten(treedef, values), rebuild


def _validity(index):
    return (jnp.arange(index.k_max, dtype=jnp.int32) < index.row_ptr[-1]).astype(jnp.float32)


def values_masks(params, masks):
    """The optimizer's masks for :func:`split`'s values tree: each compact kernel's kept entries (1) and
    padding (0); ``masks``' own leaf (a dense 0/1 mask) everywhere else."""
    if not has_compact(params):
        return masks
    leaves, treedef = jax.tree_util.tree_flatten(params, is_leaf=is_compact)
    mask_leaves = treedef.flatten_up_to(masks)
    return jax.tree_util.tree_unflatten(treedef, [_validity(p.index) if is_compact(p) else m
                                                  for p, m in zip(leaves, mask_leaves)])


def densify(params):
    """The tree with every compact kernel as its dense (in, out) kernel, zeros at pruned positions."""
    return jax.tree_util.tree_map(lambda x: to_dense(x.values, x.index) if is_compact(x) else x, params,
                                  is_leaf=is_compact)


def dense_masks(params, masks):
    """Dense 0/1 masks shaped like :func:`densify`'s tree: a compact kernel's from its index, the rest as given."""
    if not has_compact(params):
        return masks
    leaves, treedef = jax.tree_util.tree_flatten(params, is_leaf=is_compact)
    mask_leaves = treedef.flatten_up_to(masks)
    return jax.tree_util.tree_unflatten(treedef, [mask_of(p.index) if is_compact(p) else m
                                                  for p, m in zip(leaves, mask_leaves)])
