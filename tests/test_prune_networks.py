"""--prune_networks: only the named networks pruned, each with the mask the full pruning gives it."""
import dataclasses
import json

import jax
import numpy as np
import pytest

from conftest import ACT, OBS, random_transitions, tiny_config
from sparse_orl.algos import make_algorithm
from sparse_orl.config import PruneConfig, build_job
from sparse_orl.config.job import comparable_config
from sparse_orl.trainer.runs import init_runs, make_train_chunk

IQL_TINY = tiny_config("iql")
TD3BC_TINY = tiny_config("td3bc")
_data = random_transitions


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


@pytest.mark.parametrize("cfg,only,pruner", [
    pytest.param(cfg, only, pruner, id=f"{cfg.algo}-{'-'.join(only)}-{pruner}",
                 marks=() if (cfg.algo, pruner) == ("td3bc", "erk_random") else pytest.mark.slow)
    for cfg, only in [(IQL_TINY, ("actor",)), (IQL_TINY, ("critic", "value")), (TD3BC_TINY, ("critic",))]
    for pruner in ("snip", "erk_random")])
def test_named_networks_keep_the_full_pruning_masks_others_are_dense(cfg, only, pruner):
    algo = make_algorithm(cfg, OBS, ACT, 1.0)
    data = _data()
    opts = dict(allocation="erk") if pruner == "erk_random" else dict(score_batch=50)
    base = "random" if pruner == "erk_random" else pruner
    full = init_runs(algo, PruneConfig(base, **opts), data, [0], [0.9]).agent.masks
    part = init_runs(algo, PruneConfig(base, prune_networks=only, **opts), data, [0], [0.9]).agent.masks
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


@pytest.mark.slow
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
    assert p.label == "erk_random+only-critic-value"
    assert PruneConfig("snip", prune_networks=("actor",)).label == "snip+only-actor"
    # config.json records the options set away from their defaults (the method's own batch and rounds
    # count as defaults), so an option added later leaves older files matching
    assert PruneConfig("snip").to_dict() == {"pruner": "snip"}
    assert p.to_dict() == {"pruner": "random", "allocation": "erk", "prune_networks": ["critic", "value"]}
    assert PruneConfig.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    # a config.json written before prune_networks, score_batch and rounds existed (every field written out,
    # one batch and one rounds option per method family) compares equal to today's
    old = {"pruner": "snip", "snip_batch": 100, "grasp_batch": 200, "prune_iterations": 1, "synflow_iterations": 100,
           "allocation": "global", "min_layer_density": 0.0, "warmup_steps": 0, "warmup_rewind": True,
           "warmup_batch": 100, "rescale_init": False, "vae_score": "train"}
    assert comparable_config({"prunes": [old]}) == comparable_config({"prunes": [PruneConfig("snip").to_dict()]})
    assert PruneConfig.from_dict(dict(old, snip_batch=50, prune_iterations=3)) == PruneConfig("snip", score_batch=50,
                                                                                              rounds=3)
    new = json.loads(json.dumps(dataclasses.asdict(PruneConfig("snip"))))  # every field, at its value
    assert comparable_config({"prunes": [new]}) == comparable_config({"prunes": [old]})


def _config(**kw):
    given = dict(algo="iql", dataset="sb3/hopper/expert-v0", workdir="unused", sparsity=(0.95,))
    given.update(kw)
    return build_job(given)


def test_flag_reaches_every_sparse_method():
    config, _ = _config(pruner=("dense", "erk_random", "snip"), prune_networks=("actor",))
    assert [p.label for p in config.prunes] == ["dense", "erk_random+only-actor", "snip+only-actor"]


@pytest.mark.parametrize("kw,message", [
    (dict(prune_networks=("vae",)), "--prune_networks names vae, which IQL does not prune; its networks are "
                                    "actor, critic, value"),
    (dict(algo="td3bc", prune_networks=("actor", "value")), "--prune_networks names value, which TD3+BC does not "
                                                            "prune; its networks are actor, critic"),
    (dict(pruner=("dense",), prune_networks=("actor",)), "--prune_networks does not apply to --pruner=dense"),
    (dict(pruner=("narrow",), prune_networks=("actor",)), "--prune_networks does not apply to --pruner=narrow"),
    (dict(pruner=("snip", "narrow"), prune_networks=("actor",)), "--pruner=narrow cannot be combined with "
     "--prune_networks (the narrow control narrows every network); train it in a job of its own"),
    (dict(prune_networks=("value", "actor", "critic")), "--prune_networks=actor,critic,value lists every network "
                                                        "IQL prunes: leave it out"),
    (dict(algo="bcq", pruner=("snip",), vae_score="acting", prune_networks=("actor", "critic")),
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
        init_runs(algo, PruneConfig("snip", score_batch=50, prune_networks=("vae",)), _data(), [0], [0.9])


def test_library_takes_a_bare_name_as_one_network_and_refuses_blank_names():
    assert PruneConfig("snip", prune_networks="actor").prune_networks == ("actor",)  # one name, not its letters
    with pytest.raises(ValueError, match=r"^--prune_networks must be a comma list of network names, got "
                                         r"\['actor', ''\]$"):
        PruneConfig("snip", prune_networks=("actor", " "))
    with pytest.raises(ValueError, match=r"^--prune_networks must be a list of names, got None$"):
        PruneConfig("snip", prune_networks=None)
