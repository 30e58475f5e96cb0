"""Remedies for layer collapse: allocation, floors, iterative SNIP, SynFlow, acting-time scoring, warm-up."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ACT, OBS, random_transitions
from sparse_orl import pruning
from sparse_orl.algos import BCConfig, make_algorithm
from sparse_orl.algos.networks import MLP
from sparse_orl.config import ExperimentConfig, PruneConfig, build_job
from sparse_orl.report import diagnostics
from sparse_orl.trainer.initialize import init_state

VAE_ONLY = BCConfig(vae_only=True, vae_hidden=(12, 12))
LEVELS = (0.5, 0.9, 0.97)


def _data():
    return random_transitions(done_frac=0.0)


def _scores(seed=0):
    """Layers of very different sizes; the small head has the largest scores, the big layer tiny ones."""
    rng = np.random.default_rng(seed)
    return {
        "a": {"kernel": jnp.asarray(rng.uniform(size=(6, 40)), jnp.float32), "bias": jnp.zeros(40)},
        "b": {"kernel": jnp.asarray(rng.uniform(size=(40, 40)) * 1e-3, jnp.float32), "bias": jnp.zeros(40)},
        "c": {"kernel": jnp.asarray(rng.uniform(size=(40, 3)) * 10, jnp.float32), "bias": jnp.zeros(3)},
    }


def _counts(masks):
    return {k: int(np.count_nonzero(np.asarray(v["kernel"]))) for k, v in masks.items()}


N_SCORES = 6 * 40 + 40 * 40 + 40 * 3


@pytest.mark.parametrize("allocation,floor", [("global", 0.0), ("global", 0.05), ("erk", 0.0),
                                              ("uniform", 0.0), ("erk", 0.02)])
def test_allocation_keeps_exact_count_concrete_and_traced(allocation, floor):
    scores = _scores()
    alloc = lambda s: pruning.allocate_masks(scores, s, allocation=allocation, min_layer_density=floor)
    traced = jax.jit(jax.vmap(alloc))(jnp.asarray(LEVELS, jnp.float32))
    for i, s in enumerate(LEVELS):
        concrete = alloc(s)
        assert sum(_counts(concrete).values()) == pruning.num_kept(N_SCORES, s)
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(np.asarray(a)[i], b), traced, concrete)
        for k, v in concrete.items():  # within a layer the highest scores are kept
            sc, m = np.asarray(scores[k]["kernel"]).ravel(), np.asarray(v["kernel"]).ravel() > 0
            if 0 < m.sum() < m.size:
                assert sc[m].min() >= sc[~m].max()
            np.testing.assert_array_equal(v["bias"], 1.0)


def test_erk_caps_dense_layers_and_redistributes():
    scores = _scores()
    shapes = [(6, 40), (40, 40), (40, 3)]
    for s in (0.5, 0.9):
        k = pruning.num_kept(N_SCORES, s)
        counts = _counts(pruning.allocate_masks(scores, s, allocation="erk"))
        ref = pruning.erk_counts(shapes, k)
        got = np.array([counts["a"], counts["b"], counts["c"]])
        assert np.all(np.abs(got - ref) <= 1.0), (got, ref)
        if s == 0.5:  # ERK density of the (40, 3) head is (43/120)·ε > 1: capped dense, rest redistributed
            assert counts["c"] == 120 and ref[2] == 120
    # uniform: every layer at the network's density, up to rounding
    counts = _counts(pruning.allocate_masks(scores, 0.9, allocation="uniform"))
    k = pruning.num_kept(N_SCORES, 0.9)
    for name, size in (("a", 240), ("b", 1600), ("c", 120)):
        assert abs(counts[name] - k * size / N_SCORES) <= 1.0


def test_floor_is_respected_and_rest_follows_global_ranking():
    scores = _scores()
    plain = _counts(pruning.masks_from_scores(scores, 0.95))
    assert plain["b"] == 0  # global ranking collapses the big low-score layer
    m = pruning.allocate_masks(scores, 0.95, min_layer_density=0.01)
    counts = _counts(m)
    for name, size in (("a", 240), ("b", 1600), ("c", 120)):
        assert counts[name] >= math.ceil(0.01 * size)
    assert counts["b"] == 16 and sum(counts.values()) == pruning.num_kept(N_SCORES, 0.95)


def _tiny_mlp_problem(hidden=(64, 64)):
    net = MLP(hidden=hidden, out=1)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    x, y = jax.random.normal(k2, (32, 2)), jax.random.normal(k3, (32, 1))
    params = net.init(k1, x)["params"]
    loss = lambda p, b: jnp.mean(jnp.square(net.apply({"params": p}, b[0]) - b[1]))
    return loss, params, (x, y)


def _mul(a, b):
    return jax.tree_util.tree_map(lambda p, q: p * q, a, b)


def test_exponential_schedule_and_iterative_k1_equals_snip():
    s = np.asarray(pruning.exponential_schedule(0.99, jnp.arange(0, 5), 4))
    np.testing.assert_allclose(1 - s, 0.01 ** (np.arange(5) / 4), rtol=1e-5)
    loss, params, batch = _tiny_mlp_problem((16, 16))
    score_fn = lambda m: pruning.snip_scores(loss, _mul(params, m), batch)
    mask_fn = lambda sc, st, prev: pruning.allocate_masks(pruning.exclude_pruned(sc, prev), st)
    ones = pruning.ones_like_masks(params)
    k1 = jax.jit(lambda: pruning.iterative_masks(score_fn, mask_fn, ones, 0.9, 1))()
    one_shot = pruning.masks_from_scores(pruning.snip_scores(loss, params, batch), 0.9)
    jax.tree_util.tree_map(np.testing.assert_array_equal, k1, one_shot)
    k3 = jax.jit(lambda: pruning.iterative_masks(score_fn, mask_fn, ones, 0.9, 3))()
    assert pruning.layer_report(k3)["kept"] == pruning.layer_report(one_shot)["kept"]


def test_iterative_snip_with_allocation_exact_count_traced_under_vmap():
    loss, params, batch = _tiny_mlp_problem((16, 16))
    score_fn = lambda m: pruning.snip_scores(loss, _mul(params, m), batch)
    mask_fn = lambda sc, st, prev: pruning.allocate_masks(pruning.exclude_pruned(sc, prev), st, allocation="erk")
    ones = pruning.ones_like_masks(params)
    levels = (0.8, 0.95)
    out = jax.jit(jax.vmap(lambda sp: pruning.iterative_masks(score_fn, mask_fn, ones, sp, 4)))(
        jnp.asarray(levels, jnp.float32))
    for i, sp in enumerate(levels):
        rep = pruning.layer_report(jax.tree_util.tree_map(lambda a: np.asarray(a)[i], out))
        assert rep["kept"] == pruning.num_kept(rep["total"], sp)


def test_synflow_matches_hand_computation_on_two_layer_linear_net():
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    params = {"l1": {"kernel": jnp.asarray(w1, jnp.float32), "bias": jnp.ones(4)},
              "l2": {"kernel": jnp.asarray(w2, jnp.float32), "bias": jnp.ones(2)}}
    paths = pruning.mlp_paths(params)
    raw = pruning.synflow_scores(params, paths, normalize=False)
    # R = 1ᵀ|W1||W2|1: S1_ij = |W1_ij|·(|W2|1)_j, S2_jk = (1ᵀ|W1|)_j·|W2_jk|
    np.testing.assert_allclose(raw["l1"]["kernel"], np.abs(w1) * np.abs(w2).sum(1)[None, :], rtol=1e-5)
    np.testing.assert_allclose(raw["l2"]["kernel"], np.abs(w1).sum(0)[:, None] * np.abs(w2), rtol=1e-5)
    np.testing.assert_array_equal(raw["l1"]["bias"], 0.0)
    r = np.ones(3) @ np.abs(w1) @ np.abs(w2) @ np.ones(2)
    for layer in ("l1", "l2"):  # conservation: each layer's scores sum to R; normalized: to 1
        np.testing.assert_allclose(float(jnp.sum(raw[layer]["kernel"])), r, rtol=1e-5)
    norm = pruning.synflow_scores(params, paths)
    for layer in ("l1", "l2"):
        np.testing.assert_allclose(norm[layer]["kernel"], raw[layer]["kernel"] / r, rtol=1e-5)


def test_synflow_avoids_layer_collapse_where_magnitude_collapses():
    loss, params, batch = _tiny_mlp_problem()
    s = 0.99
    mag = pruning.masks_from_scores(pruning.magnitude_scores(params), s)
    # magnitude keeps only l1 (largest init bound 1/sqrt(2)); SNIP keeps every layer on this net
    assert pruning.layer_report(mag)["collapsed_layers"] == ["l2", "l3"]
    paths = pruning.mlp_paths(params)
    ones = pruning.ones_like_masks(params)
    score_fn = lambda m: pruning.synflow_scores(jax.tree_util.tree_map(lambda p, q: p * q, params, m), paths)
    mask_fn = lambda sc, st, prev: pruning.allocate_masks(pruning.exclude_pruned(sc, prev), st)
    syn = jax.jit(jax.vmap(lambda sp: pruning.iterative_masks(score_fn, mask_fn, ones, sp, 100)))(
        jnp.asarray([0.99, 0.995], jnp.float32))
    for i, sp in enumerate((0.99, 0.995)):  # traced sparsity under vmap
        m = jax.tree_util.tree_map(lambda a: np.asarray(a)[i], syn)
        rep = pruning.layer_report(m)
        assert not rep["collapsed_layers"] and rep["kept"] == pruning.num_kept(rep["total"], sp)
        units = diagnostics.unit_report(m, paths)["layers"]
        assert all(u["effective_width"] > 0 for u in units.values())  # still connected input -> output


def test_acting_time_scoring_changes_only_decoder_masks():
    agent = make_algorithm(VAE_ONLY, OBS, ACT, 1.0)
    acting_agent = make_algorithm(dataclasses.replace(VAE_ONLY, vae_score="acting"), OBS, ACT, 1.0)
    assert agent.acting_latent_clip == 0.25
    data = _data()
    prune = PruneConfig("snip", score_batch=50)
    train, acting = jax.jit(lambda: tuple(init_state(a, jax.random.PRNGKey(1), data, prune, 0.9).masks["vae"]
                                          for a in (agent, acting_agent)))()
    enc = [k for k in train if not k.startswith("d")]
    dec = [k for k in train if k.startswith("d")]
    for k in enc:
        np.testing.assert_array_equal(train[k]["kernel"], acting[k]["kernel"])
    count = lambda m: sum(int(np.count_nonzero(np.asarray(m[k]["kernel"]))) for k in dec)
    assert count(train) == count(acting)
    assert any(not np.array_equal(train[k]["kernel"], acting[k]["kernel"]) for k in dec)
    # the acting loss decodes a clipped prior latent, no encoder
    assert agent.rerank_problems(agent.init_params(jax.random.PRNGKey(0)), data, jax.random.PRNGKey(2), prune) is None
    (select, (loss_fn, p, b)), = acting_agent.rerank_problems(acting_agent.init_params(jax.random.PRNGKey(0)), data,
                                                              jax.random.PRNGKey(2), prune).values()
    assert [k for k in p if select(k)] == dec
    assert float(jnp.max(jnp.abs(b.eps))) <= 0.25
    np.testing.assert_allclose(float(loss_fn(p, b)),
                               float(jnp.mean(jnp.square(agent.decode(p, data.obs, b.eps) - data.action))), rtol=1e-6)


def test_warmup_runs_rewinds_and_labels():
    agent = make_algorithm(VAE_ONLY, OBS, ACT, 1.0)
    data = _data()
    key = jax.random.PRNGKey(0)
    # init under jit, as agent.init runs it (eager and jitted uniform draws may differ in the last ulp)
    dense = jax.jit(agent.init_params)(jax.random.split(key)[0])["vae"]
    configs = [PruneConfig("snip", score_batch=50, warmup_steps=3, warmup_rewind=r, warmup_batch=20) for r in (True, False)]
    states = jax.jit(lambda: tuple(init_state(agent, key, data, p, 0.9) for p in configs))()
    for rewind, st in zip((True, False), states):
        p, m = st.params["vae"], st.masks["vae"]
        keep = np.asarray(m["d2"]["kernel"]) > 0
        same = np.allclose(np.asarray(p["d2"]["kernel"])[keep], np.asarray(dense["d2"]["kernel"])[keep],
                           rtol=1e-6, atol=1e-7)
        assert same == rewind
        assert np.all(np.asarray(p["d2"]["kernel"])[~keep] == 0)
        assert pruning.layer_report(m)["sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert PruneConfig("snip", warmup_steps=500).label == "snip+warmup500"
    assert PruneConfig("snip", warmup_steps=500, warmup_rewind=False).label == "snip+warmup500-norewind"


def test_labels_and_validation():
    assert PruneConfig("snip").label == "snip"
    assert PruneConfig("snip", allocation="erk").label == "snip+erk"
    assert PruneConfig("grasp", min_layer_density=0.01).label == "grasp+floor0.01"
    assert PruneConfig("snip", rounds=5).label == "snip+iter5"
    assert PruneConfig("synflow").label == "synflow"
    assert PruneConfig("synflow", rounds=20).label == "synflow+it20"
    # the acting-time VAE score is the agent's option; it names the methods it changes
    acting = dataclasses.replace(VAE_ONLY, vae_score="acting")
    job = ExperimentConfig(dataset="d", workdir="w", agent=acting, prunes=(PruneConfig("snip"), PruneConfig("random")))
    assert [job.method_label(i) for i in range(2)] == ["snip+acting", "random"]
    with pytest.raises(ValueError, match="--vae_score=acting changes the masks of SNIP and GraSP only"):
        ExperimentConfig(dataset="d", workdir="w", agent=acting, prunes=(PruneConfig("synflow"),)).validate()
    for bad in (dict(pruner="random", rounds=3), dict(pruner="dense", allocation="erk"),
                dict(pruner="snip", allocation="blocks"), dict(pruner="snip", warmup_rewind=False)):
        with pytest.raises(ValueError):
            PruneConfig(**bad)
    p = PruneConfig.for_pruner("random", rounds=3, allocation="erk")
    assert p.label == "erk_random"
    assert PruneConfig.for_pruner("dense", allocation="erk", warmup_steps=5).label == "dense"


def test_fan_in_rescale_restores_dense_preactivation_variance():
    rng = np.random.default_rng(0)
    n, units = 400, 300
    kernel = jnp.asarray(rng.uniform(-1, 1, size=(n, units)) / math.sqrt(n), jnp.float32)
    mask = jnp.asarray(rng.uniform(size=(n, units)) < 0.05, jnp.float32)
    params = {"k": kernel, "b": jnp.ones(units)}
    masks = {"k": mask, "b": jnp.ones(units)}
    out = pruning.fan_in_rescale(params, masks)
    kept = np.asarray(mask).sum(0)
    expect = np.asarray(kernel * mask) * np.sqrt(n / np.maximum(kept, 1))
    np.testing.assert_allclose(np.asarray(out["k"]), expect, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(out["b"]), np.ones(units))
    assert np.all(np.asarray(out["k"])[np.asarray(mask) == 0] == 0)
    # pre-activation variance of unit inputs x ~ N(0, 1): dense ≈ masked-and-rescaled, masked alone ≈ 5% of it
    x = rng.normal(size=(2000, n)).astype(np.float32)
    var = lambda w: float(np.mean(np.var(x @ np.asarray(w), axis=0)))
    dense, masked, rescaled = var(kernel), var(kernel * mask), var(out["k"])
    assert abs(rescaled / dense - 1) < 0.1 and masked / dense < 0.08


def test_rescale_init_in_agent_init_label_and_zeros():
    agent = make_algorithm(VAE_ONLY, OBS, ACT, 1.0)
    data = _data()
    key = jax.random.PRNGKey(0)
    plain, resc = jax.jit(lambda: tuple(init_state(agent, key, data, p, 0.9) for p in (
        PruneConfig("random"), PruneConfig("random", rescale_init=True))))()
    for layer, leaves in plain.params["vae"].items():
        m = np.asarray(plain.masks["vae"][layer]["kernel"])
        np.testing.assert_array_equal(m, np.asarray(resc.masks["vae"][layer]["kernel"]))
        k_plain, k_resc = np.asarray(leaves["kernel"]), np.asarray(resc.params["vae"][layer]["kernel"])
        assert np.all(k_resc[m == 0] == 0)
        kept = m.sum(0)
        np.testing.assert_allclose(k_resc, k_plain * np.sqrt(m.shape[0] / np.maximum(kept, 1)), rtol=1e-5)
        np.testing.assert_array_equal(np.asarray(leaves["bias"]), np.asarray(resc.params["vae"][layer]["bias"]))
    assert PruneConfig("random", allocation="erk", rescale_init=True).label == "erk_random+rescale"
    assert PruneConfig.for_pruner("dense", rescale_init=True).label == "dense"


def test_erk_random_preset_flag():
    """--pruner=erk_random is one flag for random ranking with the ERK budget (the recommendation)."""

    def labels(**flags):
        config, _ = build_job(dict(dataset="d", workdir="w", sparsity=(0.9,), **flags))
        return [config.method_label(i) for i in range(len(config.prunes))]

    assert labels(pruner=("none", "random", "erk_random", "snip")) == ["dense", "random", "erk_random", "snip"]
    assert labels(pruner=("erk_random",), allocation="erk") == ["erk_random"]
    assert labels(pruner=("erk_random",), min_layer_density=0.01) == ["erk_random+floor0.01"]
    config, _ = build_job(dict(dataset="d", workdir="w", pruner=("erk_random",)))
    assert config.prunes[0] == PruneConfig("random", allocation="erk")
    with pytest.raises(ValueError, match=r"^--pruner=erk_random means --allocation=erk; it conflicts with "
                                         r"--allocation=uniform$"):
        labels(pruner=("erk_random",), allocation="uniform")
