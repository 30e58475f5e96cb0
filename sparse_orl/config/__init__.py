"""The configs of a job, each option declared once as a dataclass field (:mod:`sparse_orl.fields`).

:class:`ExperimentConfig` (what one job trains; its per-run settings are :class:`RunSettings`),
:class:`PruneConfig` (one pruning method), :class:`LogConfig` (how the job reports) and the
algorithms' own configs (:mod:`sparse_orl.algos`). :func:`build_job` builds them from the flat
option names that ``launch.train``'s flags and :func:`sparse_orl.train`'s keywords share.
"""
from sparse_orl.config.job import (JOB_DEFAULTS, MAX_SEED, ExperimentConfig, LogConfig, RunSettings, Selection,
                                   comparable_config, upgrade_config_dict)
from sparse_orl.config.options import (Option, agent_config, agent_option_owners, agent_options, build_job,
                                       check_agent_options, check_names, job_options, prune_configs, typed)
from sparse_orl.config.prune import NARROW, PruneConfig, pruner_names

__all__ = ["JOB_DEFAULTS", "MAX_SEED", "NARROW", "ExperimentConfig", "LogConfig", "Option", "PruneConfig",
           "RunSettings", "Selection", "agent_config", "agent_option_owners", "agent_options", "build_job",
           "check_agent_options", "check_names", "comparable_config", "job_options", "prune_configs",
           "pruner_names", "typed", "upgrade_config_dict"]
