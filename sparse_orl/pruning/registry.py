"""Pruning methods by name: a scorer plus the options the name implies.

A *scorer* maps one network's problem to importance scores (higher = keep)::

    scorer(loss_fn, params, batch, key) -> pytree shaped like params

``loss_fn(params, batch) -> scalar`` is deterministic (noise rides in
``batch``); ``key`` is for scorers that draw randomness themselves (random
pruning). A scorer registered with ``uses_paths=True`` is also called with the
keyword arguments ``paths=`` (SynFlow paths of the network) and ``prunable=``.

:func:`prune_at_init` (``driver.py``) looks methods up here, so a scorer
registered by a user is used by name like a built-in one.
"""
from __future__ import annotations

import dataclasses
import types
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from sparse_orl.pruning.allocation import ALLOCATIONS
from sparse_orl.pruning.scores import grasp_scores, magnitude_scores, random_scores, snip_scores
from sparse_orl.pruning.synflow import synflow_scores

Scorer = Callable[..., Any]

# Options a name may imply (see PrunerSpec.defaults), and options that give a number of rounds.
DEFAULTABLE_OPTIONS = ("allocation",)
ROUNDS_OPTIONS = ("prune_iterations", "synflow_iterations")
ALIASES = {"dense": "none"}


@dataclasses.dataclass(frozen=True)
class PrunerSpec:
    """What a method name stands for.

    scorer: ``scorer(loss_fn, params, batch, key)``, or None for no pruning (dense).
    defaults: options this name implies, e.g. ``{"allocation": "erk"}`` for erk_random.
    rounds_option: the :func:`prune_at_init` option giving its number of
      rounds ("prune_iterations" or "synflow_iterations"); None: one-shot.
    uses_paths: the scorer also takes ``paths=`` and ``prunable=`` (SynFlow).
    """

    scorer: Optional[Scorer]
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    rounds_option: Optional[str] = "prune_iterations"
    uses_paths: bool = False


PRUNERS: Dict[str, PrunerSpec] = {}


def register_pruner(name: str, scorer: Optional[Scorer], *, defaults: Optional[Mapping[str, Any]] = None,
                    rounds_option: Optional[str] = "prune_iterations", uses_paths: bool = False,
                    overwrite: bool = False) -> PrunerSpec:
    """Register ``scorer`` under ``name`` in :data:`PRUNERS` and return its spec.

    Raises ``ValueError`` for a name that is not a simple identifier, a name
    already registered (unless ``overwrite``) or an alias, and for unknown
    ``defaults`` or ``rounds_option`` values.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a pruning method name must be a simple identifier, got {name!r}")
    if name in ALIASES:
        raise ValueError(f"{name!r} is an alias of {ALIASES[name]!r} and cannot be registered")
    if name in PRUNERS and not overwrite:
        raise ValueError(f"pruning method {name!r} is already registered (pass overwrite=True to replace it)")
    if scorer is not None and not callable(scorer):
        raise ValueError(f"the scorer of {name!r} must be callable, got {scorer!r}")
    defaults = dict(defaults or {})
    bad = sorted(set(defaults) - set(DEFAULTABLE_OPTIONS))
    if bad:
        raise ValueError(f"defaults of {name!r} may only set {DEFAULTABLE_OPTIONS}, got {bad}")
    if "allocation" in defaults and defaults["allocation"] not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {defaults['allocation']!r}")
    if rounds_option is not None and rounds_option not in ROUNDS_OPTIONS:
        raise ValueError(f"rounds_option must be None or one of {ROUNDS_OPTIONS}, got {rounds_option!r}")
    spec = PrunerSpec(scorer, types.MappingProxyType(defaults), rounds_option, bool(uses_paths))
    PRUNERS[name] = spec
    return spec


def registered_names() -> Tuple[str, ...]:
    """Registered method names and aliases, sorted."""
    return tuple(sorted(set(PRUNERS) | set(ALIASES)))


def resolve_pruner(name: str) -> Tuple[str, PrunerSpec]:
    """(canonical name, spec) of a method name; "dense" is an alias of "none"."""
    canonical = ALIASES.get(name, name) if isinstance(name, str) else name
    if canonical not in PRUNERS:
        raise ValueError(f"unknown pruning method {name!r}; registered methods: {', '.join(registered_names())}")
    return canonical, PRUNERS[canonical]


# ---- built-in methods: thin adapters to the scorers' own signatures ------------------
def _snip(loss_fn, params, batch, key):
    return snip_scores(loss_fn, params, batch)


def _grasp(loss_fn, params, batch, key):
    return grasp_scores(loss_fn, params, batch)


def _random(loss_fn, params, batch, key):
    return random_scores(key, params)


def _magnitude(loss_fn, params, batch, key):
    return magnitude_scores(params)


def _synflow(loss_fn, params, batch, key, *, paths, prunable=None):
    return synflow_scores(params, paths, prunable=prunable)


register_pruner("none", None, rounds_option=None)
register_pruner("snip", _snip)
register_pruner("grasp", _grasp)
register_pruner("random", _random, rounds_option=None)
register_pruner("magnitude", _magnitude, rounds_option=None)
register_pruner("synflow", _synflow, rounds_option="synflow_iterations", uses_paths=True)
register_pruner("erk_random", _random, defaults={"allocation": "erk"}, rounds_option=None)
