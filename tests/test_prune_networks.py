"""--prune_networks: only the named networks pruned, each with the mask the full pruning gives it."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import random_transitions
from sparse_orl import config as options_lib
from sparse_orl.algos import IQLConfig, TD3BCConfig, make_algorithm
from sparse_orl.config import PruneConfig, canonical_prune_dict
from sparse_orl.trainer.runs import init_runs, make_train_chunk
from sparse_orl.store.workdir import comparable_config

OBS, ACT = 5, 2
IQL_TINY = IQLConfig(actor_hidden=(8, 8), critic_hidden=(8, 8), value_hidden=(8, 8))
TD3BC_TINY = TD3BCConfig(actor_hidden=(8, 8), critic_hidden=(8, 8))


def _data():
    return random_transitions(obs_dim=OBS, act_dim=ACT)


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


@pytest.mark.parametrize("cfg,only", [(IQL_TINY, ("actor",)), (IQL_TINY, ("critic", "value")),
                                      (TD3BC_TINY, ("critic",))])
@pytest.mark.parametrize("pruner", ["snip", "erk_random"])
def test_named_networks_keep_the_full_pruning_masks_others_are_dense(cfg, only, pruner):
    algo = make_algorithm(cfg, OBS, ACT, 1.0)
    data = _data()
    opts = dict(allocation="erk") if pruner == "erk_random" else {}
    base = "random" if pruner == "erk_random" else pruner
    full = init_runs(algo, PruneConfig(base, snip_batch=50, **opts), data, [0], [0.9]).agent.masks
    part = init_runs(algo, PruneConfig(base, snip_batch=50, prune_networks=only, **opts), data, [0],
                     [0.9]).agent.masks
    for net in algo.networks:
        got, ref = _leaves(part[net]), _leaves(full[net])
        if net in only:
            for x, y in zip(got, ref):
                np.testing.assert_array_equal(x, y)
            assert sum(int((x == 0).sum()) for x in got) > 0
        else:
            assert all(np.all(x == 1.0) for x in got)
    if "critic" in only and "q1" in part["critic"]:  # a twin critic: Q2 takes Q1's mask
        for x, y in zip(_leaves(part["critic"]["q1"]), _leaves(part["critic"]["q2"])):
            np.testing.assert_array_equal(x, y)


def test_trained_actor_only_run_has_exact_zeros_in_the_actor_and_none_forced_elsewhere():
    algo = make_algorithm(IQL_TINY.for_run(60), OBS, ACT, 1.0)
    data = _data()
    prune = PruneConfig("random", allocation="erk", prune_networks=("actor",))
    runs = init_runs(algo, prune, data, [0], [0.9])
    runs, _ = make_train_chunk(algo, 32, 60)(runs, data)
    st = jax.tree_util.tree_map(lambda x: x[0], runs.agent)  # the one run
    kernels = [x for x in _leaves(st.params["actor"]) if x.ndim >= 2]
    masks = [m for m in _leaves(st.masks["actor"]) if m.ndim >= 2]
    total = sum(m.size for m in masks)
    kept = sum(int(m.sum()) for m in masks)
    assert kept == total - round(0.9 * total)  # the actor at exactly 90%
    for x, m in zip(kernels, masks):
        assert np.all(x[m == 0] == 0.0)
    for net in ("critic", "value"):  # dense: trained weights, none held at zero
        assert all(np.all(m == 1.0) for m in _leaves(st.masks[net]))
        assert all(np.count_nonzero(x) == x.size for x in _leaves(st.params[net]) if x.ndim >= 2)


def test_label_canonical_form_and_old_configs_still_match():
    p = PruneConfig.for_pruner("random", allocation="erk", prune_networks=["value", "critic", "critic"])
    assert p.prune_networks == ("critic", "value")
    assert p.label == "random+erk+only-critic-value"
    assert PruneConfig("snip", prune_networks=("actor",)).label == "snip+only-actor"
    # a config.json written before the option existed compares equal to one with it at its default
    new = json.loads(json.dumps(dataclasses.asdict(PruneConfig("snip"))))
    assert new["prune_networks"] == []
    assert canonical_prune_dict(new) == {"pruner": "snip", "snip_batch": 100, "grasp_batch": 200}
    old = {k: v for k, v in new.items() if k != "prune_networks"}
    assert comparable_config({"prunes": [old]}) == comparable_config({"prunes": [new]})
    assert canonical_prune_dict(json.loads(json.dumps(dataclasses.asdict(p))))["prune_networks"] == [
        "critic", "value"]


def _config(**kw):
    given = dict(algo="iql", dataset="sb3/hopper/expert-v0", workdir="unused", sparsity="0.95")
    given.update(kw)
    return options_lib.experiment_config(options_lib.Options(options_lib.train_options(), given))


def test_flag_reaches_every_sparse_method():
    config, _ = _config(pruner="none,erk_random,snip", prune_networks="actor")
    assert [p.label for p in config.prunes] == ["dense", "random+erk+only-actor", "snip+only-actor"]


@pytest.mark.parametrize("kw,message", [
    (dict(prune_networks="vae"), "--prune_networks names vae, which IQL does not prune; its networks are "
                                 "actor, critic, value"),
    (dict(algo="td3bc", prune_networks="actor,value"), "--prune_networks names value, which TD3+BC does not "
                                                       "prune; its networks are actor, critic"),
    (dict(pruner="none", prune_networks="actor"), "--prune_networks does not apply to --pruner=none"),
    (dict(pruner="narrow", prune_networks="actor"), "--prune_networks does not apply to --pruner=narrow"),
    (dict(pruner="snip,narrow", prune_networks="actor"), "--pruner=narrow cannot be combined with "
     "--prune_networks (the narrow control narrows every network); train it in a job of its own"),
    (dict(prune_networks="value,actor,critic"), "--prune_networks=actor,critic,value lists every network IQL "
                                                "prunes: leave it out"),
    (dict(algo="bcq", pruner="snip", vae_score="acting", prune_networks="actor,critic"),
     "--vae_score=acting changes only the VAE's mask, which --prune_networks=actor,critic leaves dense"),
])
def test_errors_name_the_flag(kw, message):
    with pytest.raises(ValueError) as e:
        _config(**kw)
    assert str(e.value) == message


def test_init_runs_checks_the_names_too():
    """Callers that skip ExperimentConfig (launch.diagnose --at_init, the library) get the same line."""
    algo = make_algorithm(IQL_TINY, OBS, ACT, 1.0)
    with pytest.raises(ValueError, match=r"^--prune_networks names vae, which IQL does not prune; its networks "
                                         r"are actor, critic, value$"):
        init_runs(algo, PruneConfig("snip", snip_batch=50, prune_networks=("vae",)), _data(), [0], [0.9])


def test_library_refuses_a_bare_string():
    with pytest.raises(ValueError, match=r"--prune_networks must be a comma list of network names, got 'actor'"):
        PruneConfig("snip", prune_networks="actor")
    with pytest.raises(ValueError, match="--prune_networks must be a comma list"):
        PruneConfig("snip", prune_networks=("actor", " "))
    with pytest.raises(ValueError, match="--prune_networks must be a comma list"):
        PruneConfig("snip", prune_networks=None)
