"""BCQ / BC: critic targets by hand, exact zeros after training, vmap = separate runs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import (OBS, assert_state_zero_where_pruned, assert_zero_where_pruned, numpy_mlp,
                      random_transitions, tiny_algorithm)
from sparse_orl.config import PruneConfig
from sparse_orl.trainer.runs import init_runs, make_train_chunk, resolve_runs_loop


def _data():
    return random_transitions(n=300)


# ---- a NumPy forward pass written independently of the flax modules -------------
def _dense(p, x):
    return x @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"], np.float64)


def _decode(vae, s, z, max_action=1.0):
    x = np.concatenate([s, z], -1)
    x = np.maximum(_dense(vae["d1"], x), 0)
    x = np.maximum(_dense(vae["d2"], x), 0)
    return max_action * np.tanh(_dense(vae["d3"], x))


def _actor(p, s, a, phi=0.05, max_action=1.0):
    out = numpy_mlp(p["net"], np.concatenate([s, a], -1))
    return np.clip(a + phi * max_action * np.tanh(out), -max_action, max_action)


def _q(p, s, a):
    return numpy_mlp(p["net"], np.concatenate([s, a], -1))[..., 0]


@pytest.mark.parametrize("algo", ["bcq", "bc"])
def test_critic_target_matches_hand_computation(algo):
    agent = tiny_algorithm(algo)
    params = agent.init_params(jax.random.PRNGKey(0))
    batch = jax.tree_util.tree_map(lambda x: x[:4], _data())
    z = jnp.clip(jax.random.normal(jax.random.PRNGKey(1), (4, 10, agent.latent_dim)), -0.5, 0.5)
    y = np.asarray(agent.critic_target_values(params, params["vae"], batch, z))

    p = jax.tree_util.tree_map(np.asarray, params)
    expected = []
    for b in range(4):
        s = np.repeat(np.asarray(batch.next_obs[b], np.float64)[None], 10, 0)
        a = _decode(p["vae"], s, np.asarray(z[b], np.float64))
        if algo == "bcq":
            a = _actor(p["actor"], s, a)
        q1, q2 = _q(p["critic"]["q1"], s, a), _q(p["critic"]["q2"], s, a)
        soft = 0.75 * np.minimum(q1, q2) + 0.25 * np.maximum(q1, q2)
        expected.append(float(batch.reward[b]) + 0.99 * (1.0 - float(batch.done[b])) * soft.max())
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_bcq_act_is_argmax_q1_and_bc_act_is_clipped_decode():
    agent = tiny_algorithm("bcq")
    params = agent.init_params(jax.random.PRNGKey(0))
    obs = _data().obs[:3]
    key = jax.random.PRNGKey(5)
    a = np.asarray(agent.act(params, jnp.zeros(OBS), jnp.ones(OBS), obs, key))
    z = np.asarray(agent.clipped_latent(key, (3, 10), 0.5), np.float64)
    p = jax.tree_util.tree_map(np.asarray, params)
    for b in range(3):
        s = np.repeat(np.asarray(obs[b], np.float64)[None], 10, 0)
        cand = _actor(p["actor"], s, _decode(p["vae"], s, z[b]))
        np.testing.assert_allclose(a[b], cand[np.argmax(_q(p["critic"]["q1"], s, cand))], atol=1e-5)
    bc = tiny_algorithm("bc", vae_only=True)
    z = np.asarray(bc.clipped_latent(key, (3,), 0.25))
    assert np.abs(z).max() <= 0.25
    a = np.asarray(bc.act(params, jnp.zeros(OBS), jnp.ones(OBS), obs, key))
    np.testing.assert_allclose(a, _decode(p["vae"], np.asarray(obs, np.float64), z), atol=1e-5)


@pytest.mark.parametrize("pruner", ["snip", pytest.param("grasp", marks=pytest.mark.slow),
                                    pytest.param("random", marks=pytest.mark.slow),
                                    pytest.param("magnitude", marks=pytest.mark.slow)])
def test_pruned_weights_stay_exactly_zero(pruner):
    agent = tiny_algorithm("bcq")
    data = _data()
    score_batch = {"snip": dict(score_batch=50), "grasp": dict(score_batch=60)}.get(pruner, {})
    runs = init_runs(agent, PruneConfig(pruner, **score_batch), data, [0], [0.9])
    st = runs.agent
    assert_zero_where_pruned(st.params, st.masks)
    np.testing.assert_array_equal(st.masks["critic"]["q1"]["net"]["l2"]["kernel"],
                                  st.masks["critic"]["q2"]["net"]["l2"]["kernel"])
    runs, metrics = make_train_chunk(agent, 32, 300)(runs, data)
    st = runs.agent
    assert int(st.step[0]) == 300 and np.all(np.isfinite(metrics["critic_loss"]))
    assert_state_zero_where_pruned(st)
    # and the kept weights did train
    kept = np.asarray(st.masks["vae"]["d2"]["kernel"]) > 0
    assert kept.sum() > 0


@pytest.mark.slow
def test_vmapped_runs_equal_separate_runs():
    agent = tiny_algorithm("bcq")
    data = _data()
    prune = PruneConfig("snip", score_batch=50)
    seeds, levels = [0, 0, 1, 1], [0.5, 0.9, 0.5, 0.9]
    together = init_runs(agent, prune, data, seeds, levels)
    together, m_all = make_train_chunk(agent, 32, 40, runs_loop="vmap")(together, data)
    chunk1 = make_train_chunk(agent, 32, 40, runs_loop="vmap")
    for i, (s, p) in enumerate(zip(seeds, levels)):
        alone, m = chunk1(init_runs(agent, prune, data, [s], [p]), data)
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b)[0], rtol=2e-4, atol=2e-5),
            together.agent.params, alone.agent.params)
        np.testing.assert_allclose(m_all["critic_loss"][i], m["critic_loss"][0], rtol=1e-4)


@pytest.mark.slow
def test_runs_loop_map_equals_vmap():
    """Runs one after another (lax.map, the CPU option) give the vmapped results."""
    agent = tiny_algorithm("bcq")
    data = _data()
    prune = PruneConfig("random")
    seeds, levels = [0, 1, 2], [0.0, 0.5, 0.9]
    out = {}
    for loop in ("vmap", "map"):
        runs = init_runs(agent, prune, data, seeds, levels)
        out[loop] = make_train_chunk(agent, 32, 30, runs_loop=loop)(runs, data)
    (a, ma), (b, mb) = out["vmap"], out["map"]
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5),
                           a.agent.params, b.agent.params)
    jax.tree_util.tree_map(np.testing.assert_array_equal, a.agent.masks, b.agent.masks)
    np.testing.assert_array_equal(a.key, b.key)
    np.testing.assert_allclose(ma["critic_loss"], mb["critic_loss"], rtol=1e-4)
    with pytest.raises(ValueError, match="runs_loop"):
        make_train_chunk(agent, 32, 30, runs_loop="pmap")
    assert resolve_runs_loop("auto") == ("map" if jax.default_backend() == "cpu" else "vmap")


def test_same_seed_same_init_and_nested_snip_masks_across_sparsity():
    agent = tiny_algorithm("bc", vae_only=True)
    runs = init_runs(agent, PruneConfig("snip", score_batch=50), _data(), [3, 3, 4], [0.0, 0.8, 0.0])
    p, m = runs.agent.params["vae"], runs.agent.masks["vae"]
    for layer in p:
        dense, sparse = np.asarray(p[layer]["kernel"][0]), np.asarray(p[layer]["kernel"][1])
        keep = np.asarray(m[layer]["kernel"][1]) > 0
        np.testing.assert_array_equal(sparse[keep], dense[keep])
        assert not np.array_equal(dense, np.asarray(p[layer]["kernel"][2]))  # other seed differs


@pytest.mark.parametrize("loop", [pytest.param("map", marks=pytest.mark.slow), "vmap"])
def test_nan_run_is_frozen_and_others_continue(loop):
    agent = tiny_algorithm("bc", vae_only=True)
    data = _data()
    runs = init_runs(agent, PruneConfig("dense"), data, [0, 1], [0.0, 0.0])
    bad_vae = jax.tree_util.tree_map(lambda x: x.at[1].set(jnp.nan), runs.agent.params["vae"])
    runs = runs.replace(agent=runs.agent.replace(params={"vae": bad_vae}))
    before = jax.tree_util.tree_map(np.asarray, runs.agent.params)
    runs, metrics = make_train_chunk(agent, 32, 20, runs_loop=loop)(runs, data)
    assert int(metrics["nan_step"][0]) == -1 and int(metrics["nan_step"][1]) == 0
    assert np.isfinite(metrics["vae_loss"][0]) and int(runs.agent.step[0]) == 20
    assert int(runs.agent.step[1]) == 0  # frozen where it broke
    runs, metrics = make_train_chunk(agent, 32, 20, runs_loop=loop)(runs, data)
    assert int(metrics["nan_step"][1]) == 0  # broke again at once, on its own (frozen) step
    assert int(runs.agent.step[0]) == 40 and int(runs.agent.step[1]) == 0
    np.testing.assert_array_equal(np.asarray(runs.agent.params["vae"]["d1"]["kernel"][1]),
                                  before["vae"]["d1"]["kernel"][1])


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["map", "vmap"])
def test_dynamic_length_chunks_equal_one_fixed_scan(loop):
    """The experiment loop sizes chunks by wall time: 20 + 15 + 5 steps must give the 40-step state."""
    agent = tiny_algorithm("bcq")
    data = _data()
    prune = PruneConfig("snip", score_batch=50)
    fixed, m_fixed = make_train_chunk(agent, 32, 40, runs_loop=loop)(init_runs(agent, prune, data, [0, 1], [0.5, 0.9]), data)
    dyn = make_train_chunk(agent, 32, None, runs_loop=loop)
    runs = init_runs(agent, prune, data, [0, 1], [0.5, 0.9])
    sums = 0.0
    for n in (20, 15, 5):
        runs, m = dyn(runs, data, jnp.int32(n))
        sums = sums + n * np.asarray(m["critic_loss"])
    assert int(runs.agent.step[0]) == 40
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6),
                           fixed.agent.params, runs.agent.params)
    np.testing.assert_allclose(sums / 40, m_fixed["critic_loss"], rtol=1e-5)
    assert bool(jnp.all(fixed.key == runs.key))
