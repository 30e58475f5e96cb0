"""Offline RL algorithms with masks as data: BCQ and BC."""
from sparse_orl.algos.agent import Agent, AgentState
from sparse_orl.algos.bc import BC
from sparse_orl.algos.bcq import BCQ
from sparse_orl.config import AgentConfig


def make_agent(config: AgentConfig, obs_dim: int, act_dim: int, max_action: float) -> Agent:
    """The agent for ``config.algo`` ("bcq" or "bc") with the dataset's shapes."""
    cls = {"bcq": BCQ, "bc": BC}[config.algo]
    return cls(config, int(obs_dim), int(act_dim), float(max_action))


__all__ = ["Agent", "AgentState", "BC", "BCQ", "make_agent"]
