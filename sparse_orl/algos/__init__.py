"""Offline RL algorithms on one interface (:mod:`sparse_orl.algos.base`), found by name.

Adding an algorithm: its own module (config + algorithm class), one line below, tests.
"""
from sparse_orl.algos.base import AlgoConfig, Algorithm, NetworkSpec, TrainState
from sparse_orl.algos.registry import (ALGORITHMS, AlgorithmSpec, algorithm_from_dict, config_from_dict, get_spec,
                                       make_algorithm, make_config, register_algorithm)
from sparse_orl.algos.bcq import BCQ, BCQConfig
from sparse_orl.algos.bc import BC, BCConfig
from sparse_orl.algos.td3bc import TD3BC, TD3BCConfig
from sparse_orl.algos.iql import IQL, IQLConfig

register_algorithm(BCQConfig, BCQ)
register_algorithm(BCConfig, BC)
register_algorithm(TD3BCConfig, TD3BC)
register_algorithm(IQLConfig, IQL)

__all__ = ["ALGORITHMS", "AlgoConfig", "Algorithm", "AlgorithmSpec", "BC", "BCConfig", "BCQ", "BCQConfig", "IQL",
           "IQLConfig", "NetworkSpec", "TD3BC", "TD3BCConfig", "TrainState", "algorithm_from_dict",
           "config_from_dict", "get_spec", "make_algorithm", "make_config", "register_algorithm"]
