"""Pruning methods by name: a scorer plus the options the name implies.

A *scorer* maps one network's problem to importance scores (higher = keep)::

    scorer(loss_fn, params, batch, key) -> pytree shaped like params

``loss_fn(params, batch) -> scalar`` is deterministic (noise rides in
``batch``); ``key`` is for scorers that draw randomness themselves (random
pruning). A method that reads the batch declares its default batch size, and an
iterative one its default number of rounds. A scorer registered with ``uses_paths=True`` is also called with the
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

# Options a name may imply (see PrunerSpec.defaults).
DEFAULTABLE_OPTIONS = ("allocation",)
ALIASES = {"none": "dense"}  # the name of the paper's code for no pruning


@dataclasses.dataclass(frozen=True)
class PrunerSpec:
    """What a method name stands for.

    scorer: ``scorer(loss_fn, params, batch, key)``, or None for no pruning (dense).
    defaults: options this name implies, e.g. ``{"allocation": "erk"}`` for erk_random.
    batch: the default size of the scoring batch, if the scorer reads the loss on a batch
      (SNIP 100, GraSP 200); None for data-free scorers (random, magnitude, SynFlow).
    rounds: the default number of rounds of an iterative method (SNIP/GraSP 1, SynFlow 100);
      None for a one-shot-only method.
    uses_paths: the scorer also takes ``paths=`` and ``prunable=`` (SynFlow).
    """

    scorer: Optional[Scorer]
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    batch: Optional[int] = None
    rounds: Optional[int] = None
    uses_paths: bool = False

    @property
    def uses_loss(self) -> bool:
        """Whether the scores depend on the loss and its batch (SNIP, GraSP)."""
        return self.batch is not None


PRUNERS: Dict[str, PrunerSpec] = {}


def register_pruner(name: str, scorer: Optional[Scorer], *, defaults: Optional[Mapping[str, Any]] = None,
                    batch: Optional[int] = None, rounds: Optional[int] = None, uses_paths: bool = False,
                    overwrite: bool = False) -> PrunerSpec:
    """Register ``scorer`` under ``name`` in :data:`PRUNERS` and return its spec (see :class:`PrunerSpec`).

    Raises ``ValueError`` for a name that is not a simple identifier, a name
    already registered (unless ``overwrite``) or an alias, and for unknown
    ``defaults`` or non-positive ``batch`` / ``rounds``.
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
    for what, v in (("batch", batch), ("rounds", rounds)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{what} of {name!r} must be None or an integer >= 1, got {v!r}")
    spec = PrunerSpec(scorer, types.MappingProxyType(defaults), batch, rounds, bool(uses_paths))
    PRUNERS[name] = spec
    return spec


def registered_names() -> Tuple[str, ...]:
    """Registered method names and aliases, sorted."""
    return tuple(sorted(set(PRUNERS) | set(ALIASES)))


def resolve_pruner(name: str) -> Tuple[str, PrunerSpec]:
    """(canonical name, spec) of a method name; "none" is an alias of "dense"."""
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


register_pruner("dense", None)
register_pruner("snip", _snip, batch=100, rounds=1)
register_pruner("grasp", _grasp, batch=200, rounds=1)
register_pruner("random", _random)
register_pruner("magnitude", _magnitude)
register_pruner("synflow", _synflow, rounds=100, uses_paths=True)
register_pruner("erk_random", _random, defaults={"allocation": "erk"})
