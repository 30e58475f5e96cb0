"""A job's data, checked before any work: the dataset, its environment, the algorithm's preprocessing,
the per-seed subsets (``--max_transitions``) and the observation statistics.

Everything here can refuse the job (a bad dataset, an env whose spaces do not match, a budget larger
than the dataset, IQL's reward scale on one episode), so :func:`load_job_data` runs before a job
claims its workdir.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from sparse_orl.algos import make_algorithm
from sparse_orl.config.job import ExperimentConfig
from sparse_orl.data import check_env_spaces, load_dataset, obs_stats
from sparse_orl.data.transitions import DatasetInfo, Transitions, subset_indices, take_rows


@dataclasses.dataclass(frozen=True)
class JobData:
    """The transitions a job trains on (host numpy, preprocessed) and what goes with them."""

    transitions: Transitions
    info: DatasetInfo
    env_id: str
    max_transitions: Optional[int] = None  # each seed trains on a subset of this many transitions
    data_subset: str = "uniform"  # how the subset is drawn (subset_indices' rule)

    def subsets(self, seeds: Sequence[int]) -> Optional[np.ndarray]:
        """(runs, max_transitions) int32 rows of each seed's subset, or None (every run: all rows)."""
        if self.max_transitions is None:
            return None
        return np.stack([subset_indices(s, self.transitions.size, self.max_transitions, self.data_subset)
                         for s in seeds])

    def subset_text(self) -> str:
        """What the runs train on, for the first lines of a job: "" with the whole dataset."""
        if self.max_transitions is None:
            return ""
        n, total = f"{self.max_transitions:,}", f"{self.transitions.size:,}"
        if self.data_subset == "first":
            return f"; every seed on the first {n} of {total} transitions (whole episodes, file order)"
        return f"; each seed on its own {n} of {total} transitions"

    def obs_stats(self, normalize: bool, seeds: Sequence[int]):
        """(mean, std): shared by every run, or (runs, obs_dim) from each seed's subset."""
        subsets = self.subsets(seeds)
        if subsets is None:
            return obs_stats(self.transitions, normalize)
        stats = [obs_stats(take_rows(self.transitions, r), normalize) for r in subsets]
        return np.stack([m for m, _ in stats]), np.stack([s for _, s in stats])


def load_job_data(config: ExperimentConfig, warn=lambda _m: None) -> JobData:
    """Load and check the data of ``config`` (``ValueError`` in one line naming the flag or file);
    ``warn(message)`` hears of settings that work but may not be what was meant."""
    from sparse_orl.job import evaluation  # gymnasium stays off the library's import path until needed

    transitions, info = load_dataset(config.dataset, env_id=config.env)
    env_id = config.env or info.env_id
    if env_id is None:
        raise ValueError(f"dataset {config.dataset!r} does not name its environment; pass --env")
    if config.eval_episodes:
        env = evaluation.make_env(env_id, flag="--env" if config.env else f"the dataset {config.dataset!r}")
        try:
            check_env_spaces(info, env)
        finally:
            env.close()
    agent = make_algorithm(config.agent_config.for_run(config.steps), info.obs_dim, info.act_dim, info.max_action)
    # preprocessing needs whole episodes (IQL's reward scale), so it sees the whole dataset
    transitions = agent.preprocess(transitions, info)
    if config.max_transitions is not None and config.max_transitions > transitions.size:
        raise ValueError(f"--max_transitions={config.max_transitions} is more than the {transitions.size:,} "
                         f"transitions of {config.dataset}")
    n = config.max_transitions or transitions.size
    for flag, size in [("batch_size", config.batch_size)] + [("score_batch", p.score_batch) for p in config.prunes]:
        if size is not None and size > n:
            warn(f"--{flag}={size} is more than the {n:,} transitions a run trains on: its batches are drawn "
                 "with replacement, so they repeat transitions")
            break
    return JobData(transitions, info, env_id, config.max_transitions, config.data_subset)
