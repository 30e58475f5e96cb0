"""The algorithm registry: every module finds an algorithm by name here, never by string checks.

``register_algorithm(config_cls, algorithm_cls)`` adds one (its name is ``config_cls.algo``);
``make_algorithm(config, obs_dim, act_dim, max_action)`` builds it; ``config_from_dict``
reads a config back from ``config.json`` / ``summary.json`` / an export's metadata.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Type

from sparse_orl.algos.base import AlgoConfig, Algorithm


@dataclasses.dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    config_cls: Type[AlgoConfig]
    algorithm_cls: Type[Algorithm]


ALGORITHMS: Dict[str, AlgorithmSpec] = {}


def register_algorithm(config_cls: Type[AlgoConfig], algorithm_cls: Type[Algorithm],
                       overwrite: bool = False) -> AlgorithmSpec:
    """Register ``algorithm_cls`` under ``config_cls.algo``."""
    name = config_cls.algo
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"an algorithm config needs a simple name in its `algo` class attribute, got {name!r}")
    if name in ALGORITHMS and not overwrite:
        raise ValueError(f"algorithm {name!r} is already registered")
    ALGORITHMS[name] = spec = AlgorithmSpec(name, config_cls, algorithm_cls)
    return spec


def get_spec(name: str) -> AlgorithmSpec:
    if name not in ALGORITHMS:
        raise ValueError(f"algo must be one of {sorted(ALGORITHMS)}, got {name!r}")
    return ALGORITHMS[name]


def make_algorithm(config: AlgoConfig, obs_dim: int, act_dim: int, max_action: float) -> Algorithm:
    """The algorithm of ``config`` with the dataset's shapes."""
    spec = get_spec(config.algo)
    return spec.algorithm_cls(config, int(obs_dim), int(act_dim), float(max_action))


def config_from_dict(d: Dict[str, Any]) -> AlgoConfig:
    """The config recorded as ``d`` (``AlgoConfig.to_dict``; extra keys such as shapes ignored)."""
    if "algo" not in d:
        raise ValueError("the agent config has no 'algo' entry")
    return get_spec(d["algo"]).config_cls.from_dict(d)


def algorithm_from_dict(d: Dict[str, Any]) -> Algorithm:
    """An algorithm from a dict holding its config and ``obs_dim``, ``act_dim``, ``max_action``."""
    return make_algorithm(config_from_dict(d), d["obs_dim"], d["act_dim"], d["max_action"])


def make_config(algo: str, **fields) -> AlgoConfig:
    """The config of algorithm ``algo`` with ``fields`` set (the others at their defaults)."""
    return get_spec(algo).config_cls(**fields)
