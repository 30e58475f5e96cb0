"""Pruning at initialization of any JAX model: problems in, one exact-sparsity mask per network out.

``prune_at_init`` is the model-agnostic form of what ``Agent.compute_masks``
does for BCQ: score each network with a registered method (``registry.py``),
allocate its kept-weight budget (``allocation.py``), optionally over several
rounds on SynFlow's exponential schedule, and return 0/1 masks shaped like the
params. It knows nothing about RL: a network is just ``(loss_fn, params, batch)``.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import jax
import numpy as np

from sparse_orl.pruning.allocation import (ALLOCATIONS, allocate_masks, exclude_pruned,
                                           iterative_masks)
from sparse_orl.pruning.masks import (Prunable, _is_concrete, apply_masks, check_sparsity,
                                      default_prunable, ones_like_masks, prunable_flags)
from sparse_orl.pruning.registry import resolve_pruner
from sparse_orl.pruning.synflow import chain_paths

Problem = Tuple[Callable[[Any, Any], Any], Any, Any]
Selector = Callable[[Any], bool]


def _check_problem(where: str, problem) -> None:
    if not isinstance(problem, (tuple, list)) or len(problem) != 3:
        raise ValueError(f"{where} must be a (loss_fn, params, batch) tuple, got {type(problem).__name__}"
                         + (f" of length {len(problem)}" if isinstance(problem, (tuple, list)) else ""))
    if not callable(problem[0]):
        raise ValueError(f"{where}: loss_fn must be callable, got {problem[0]!r}")


def _check_rounds(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _resolve_allocation(method: str, spec, allocation: Optional[str]) -> str:
    """The method's implied allocation unless given; a conflicting explicit one is an error."""
    implied = spec.defaults.get("allocation")
    if allocation is None:
        allocation = implied or "global"
    elif implied is not None and allocation != implied:
        raise ValueError(f"method {method!r} implies allocation={implied!r}, got allocation={allocation!r}; "
                         "use the base method to choose another allocation")
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    return allocation


def _check_rerank(rerank, problems) -> Dict[str, Tuple[Selector, Problem]]:
    rerank = dict(rerank or {})
    for name, entry in rerank.items():
        if name not in problems:
            raise ValueError(f"rerank names network {name!r}, which is not in problems ({sorted(problems)})")
        if not isinstance(entry, (tuple, list)) or len(entry) != 2 or not callable(entry[0]):
            raise ValueError(f"rerank[{name!r}] must be (selector, (loss_fn, params, batch))")
        _check_problem(f"rerank[{name!r}][1]", entry[1])
        params, other = problems[name][1], entry[1][1]
        if jax.tree_util.tree_structure(params) != jax.tree_util.tree_structure(other):
            raise ValueError(f"rerank[{name!r}]: its params must have the structure of problems[{name!r}]'s")
        if not isinstance(params, Mapping) or not any(entry[0](k) for k in params):
            raise ValueError(f"rerank[{name!r}]: the selector picks none of the top-level param keys "
                             f"{list(params) if isinstance(params, Mapping) else type(params).__name__}")
    return rerank


def _selected_count(masks, prunable) -> jax.Array:
    """Kept prunable weights of ``masks`` (float 0/1 counts: exact below 2^24), as int32."""
    flags = prunable_flags(masks, prunable)
    return sum(jax.numpy.sum(x) for x, f in zip(jax.tree_util.tree_leaves(masks), flags) if f).astype(
        jax.numpy.int32)


def _check_arguments(canonical, spec, problems, sparsity, rounds, allocation, min_layer_density, prunable, paths,
                     rerank):
    """:func:`prune_at_init`'s arguments checked (``ValueError`` in one line) and resolved to their defaults."""
    if not isinstance(problems, Mapping) or not problems:
        raise ValueError("problems must be a non-empty mapping {name: (loss_fn, params, batch)}")
    for name, problem in problems.items():
        if not isinstance(name, str):
            raise ValueError(f"network names must be strings, got {name!r}")
        _check_problem(f"problems[{name!r}]", problem)
    if _is_concrete(sparsity):
        check_sparsity(sparsity)
    rounds = _check_rounds("rounds", spec.rounds or 1 if rounds is None else rounds)
    if spec.rounds is None and rounds != 1 and spec.scorer is not None:
        raise ValueError(f"method {canonical!r} is one-shot: it takes rounds=1, got {rounds}")
    allocation = _resolve_allocation(canonical, spec, allocation)
    if not 0.0 <= float(min_layer_density) <= 1.0:
        raise ValueError(f"min_layer_density must be in [0, 1], got {min_layer_density!r}")
    paths = dict(paths or {})
    unknown = sorted(set(paths) - set(problems))
    if unknown:
        raise ValueError(f"paths names networks {unknown} that are not in problems ({sorted(problems)})")
    return rounds, allocation, default_prunable if prunable is None else prunable, paths, \
        _check_rerank(rerank, problems)


def _round_fns(spec, problems, names, keys, extra, rerank, alloc, prunable):
    """(score_fn(masks) -> scores, mask_fn(scores, s, prev) -> masks) of one pruning round, every network."""

    def score_fn(masks):
        out = {}
        for name in names:
            loss_fn, params, batch = problems[name]
            kw = extra.get(name, {})
            s = spec.scorer(loss_fn, apply_masks(params, masks[name]), batch, keys[name], **kw)
            if name in rerank:
                loss2, params2, batch2 = rerank[name][1]
                # A distinct key: a random scorer would otherwise re-rank by the same numbers.
                s2 = spec.scorer(loss2, apply_masks(params2, masks[name]), batch2,
                                 jax.random.fold_in(keys[name], 1), **kw)
                s = (s, s2)
            out[name] = s
        return out

    def one_mask(name, scores, s, prev):
        if name not in rerank:
            return allocate_masks(exclude_pruned(scores, prev, prunable=prunable), s, **alloc)
        # The subset's total count comes from the first ranking; inside the subset the
        # second problem's scores decide which weights fill it (Agent._network_mask).
        first, second = scores
        selector = rerank[name][0]
        base = allocate_masks(exclude_pruned(first, prev, prunable=prunable), s, **alloc)
        chosen = [k for k in base if selector(k)]
        k_sub = _selected_count({k: base[k] for k in chosen}, prunable)
        sub_scores = exclude_pruned({k: second[k] for k in chosen}, {k: prev[k] for k in chosen},
                                    prunable=prunable)
        sub = allocate_masks(sub_scores, k=k_sub, **alloc)
        return type(base)({k: sub[k] if k in sub else base[k] for k in base})

    def mask_fn(scores, s, prev):
        return {name: one_mask(name, scores[name], s, prev[name]) for name in names}

    return score_fn, mask_fn


def prune_at_init(problems: Mapping[str, Problem], method: str, sparsity, key: jax.Array, *,
                  allocation: Optional[str] = None, min_layer_density: float = 0.0,
                  rounds: Optional[int] = None,
                  prunable: Optional[Prunable] = None, paths: Optional[Mapping[str, Any]] = None,
                  rerank: Optional[Mapping[str, Tuple[Selector, Problem]]] = None) -> Dict[str, Any]:
    """One mask per network, each keeping exactly n − round(s·n) of its n prunable weights.

    Args:
      problems: ``{name: (loss_fn, params, batch)}``; ``loss_fn(params, batch)``
        is a deterministic scalar (put any noise it needs into ``batch``).
      method: a registered name (:data:`PRUNERS`): "dense" (alias "none"), "snip" (Lee et
        al. 2019), "grasp" (Wang et al. 2020), "random", "magnitude", "synflow"
        (Tanaka et al. 2020), "erk_random" (random ranking, ERK budget; Evci et
        al. 2020), or a user's :func:`register_pruner` scorer.
      sparsity: fraction s in [0, 1) pruned from each network; may be traced
        (``jax.vmap`` over sparsity levels gives the same masks as a loop).
      key: networks are scored in sorted name order; network i gets
        ``jax.random.fold_in(key, i)`` as its scorer key, in every round.
      allocation: "global" | "erk" | "uniform" (``allocation.py``); None means
        the method's own (erk_random: "erk"), else "global". An explicit value
        that contradicts the method's raises ``ValueError``.
      min_layer_density: per-layer density floor (``allocation.py``).
      rounds: rounds R of an iterative method (default: the method's own, SNIP/GraSP 1,
        SynFlow 100; a one-shot method takes only 1). Round t of R rescores
        ``params ⊙ m_{t−1}`` and prunes to 1 − (1 − s)^(t/R) among the weights still
        kept (``iterative_masks``); the last round hits s exactly.
      prunable: ``prunable(path, leaf) -> bool``; default :func:`default_prunable`
        (leaves named "kernel" with ndim >= 2). Other leaves get all-ones masks.
      paths: ``{name: SynFlow paths}`` (``synflow.py`` format) for methods that
        use paths; a network without an entry gets :func:`chain_paths` (one
        Dense chain, else ``ValueError``). Ignored by other methods.
      rerank: ``{name: (selector, (loss_fn, params, batch))}``. After a round's
        mask of ``name`` is allocated, the top-level keys k with selector(k)
        keep the same total count, re-ranked (same allocation rule inside the
        subset) by the method's scores of the second problem, its params masked
        by the mask entering the round. With selector ``k.startswith("d")`` and
        the acting-time decoder loss this is BCQ's ``vae_score="acting"``.

    Returns:
      ``{name: mask}`` in sorted name order, float32 0/1 masks shaped like params.

    Masks shared across networks (e.g. Q2 takes Q1's mask, so that one
    ranking covers one critic) are the caller's business: score one of them
    here and copy its mask.
    """
    canonical, spec = resolve_pruner(method)
    rounds, allocation, prunable, paths, rerank = _check_arguments(
        canonical, spec, problems, sparsity, rounds, allocation, min_layer_density, prunable, paths, rerank)
    names = sorted(problems)
    if spec.scorer is None:  # dense: the same all-ones masks as every other path returns
        return {name: ones_like_masks(problems[name][1]) for name in names}

    keys = {name: jax.random.fold_in(key, i) for i, name in enumerate(names)}
    extra = {}
    if spec.uses_paths:
        for name in names:
            try:
                net_paths = paths[name] if name in paths else chain_paths(problems[name][1], prunable=prunable)
            except ValueError as e:
                raise ValueError(f"network {name!r}: {e}") from None
            extra[name] = dict(paths=net_paths, prunable=prunable)
    alloc = dict(allocation=allocation, min_layer_density=min_layer_density, prunable=prunable)

    score_fn, mask_fn = _round_fns(spec, problems, names, keys, extra, rerank, alloc, prunable)
    ones = {name: ones_like_masks(problems[name][1]) for name in names}
    return iterative_masks(score_fn, mask_fn, ones, sparsity, rounds)
