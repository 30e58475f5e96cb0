"""IQL: losses by hand, reward scaling, update order, exact zeros, per-network masks, deploy == act."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import (ACT, OBS, assert_deploy_acts_like_the_library, assert_zero_where_pruned, random_transitions,
                      tiny_algorithm, tiny_config)
from sparse_orl.algos import make_algorithm
from sparse_orl.algos.iql import ActorBatch, ValueBatch, episode_returns, expectile_loss, gaussian_log_prob
from sparse_orl.config import PruneConfig
from sparse_orl.data.transitions import Transitions
from sparse_orl.trainer.runs import init_runs, make_train_chunk

_data = random_transitions


def test_expectile_and_log_prob_by_hand():
    u = jnp.asarray([2.0, -1.0, 0.5])
    assert float(expectile_loss(u, 0.7)) == pytest.approx((0.7 * 4 + 0.3 * 1 + 0.7 * 0.25) / 3, rel=1e-6)
    mean, log_std, a = jnp.asarray([[0.1, -0.2]]), jnp.asarray([0.3, -0.5]), jnp.asarray([[0.4, 0.0]])
    sd = np.exp([0.3, -0.5])
    want = (-0.5 * ((0.4 - 0.1) / sd[0]) ** 2 - np.log(sd[0]) - 0.5 * np.log(2 * np.pi)
            - 0.5 * ((0.0 + 0.2) / sd[1]) ** 2 - np.log(sd[1]) - 0.5 * np.log(2 * np.pi))
    assert float(gaussian_log_prob(mean, log_std, a)[0]) == pytest.approx(want, rel=1e-5)


def test_reward_scaling_uses_episode_returns():
    # two episodes cut by a discontinuity (next_obs != obs of the next row), returns 3 and 7
    obs = np.arange(8, dtype=np.float32).reshape(4, 2)
    nxt = np.roll(obs, -1, 0)
    nxt[1] = 99.0  # episode 1 = rows 0-1 ends here
    t = Transitions(obs, np.zeros((4, 1), np.float32), np.asarray([1, 2, 3, 4], np.float32), nxt,
                    np.zeros(4, np.float32))
    np.testing.assert_array_equal(episode_returns(t), [3.0, 7.0])
    algo = tiny_algorithm("iql", obs_dim=2, act_dim=1)
    np.testing.assert_allclose(algo.preprocess(t, None).reward, np.asarray([1, 2, 3, 4]) * 1000 / 4.0)
    assert tiny_algorithm("iql", obs_dim=2, act_dim=1, scale_rewards=False).preprocess(t, None) is t


def test_losses_match_hand_computation_and_weights_are_clipped():
    algo = tiny_algorithm("iql")
    p = algo.init_params(jax.random.PRNGKey(0))
    b = jax.tree_util.tree_map(lambda x: x[:6], _data())
    q = algo.q_min(p["critic"], b.obs, b.action)
    v = algo.value.apply({"params": p["value"]}, b.obs)
    u = np.asarray(q - v)
    want_v = np.mean(np.where(u > 0, 0.7, 0.3) * u ** 2)
    assert float(algo.value_loss(p["value"], ValueBatch(b.obs, q))) == pytest.approx(want_v, rel=1e-5)
    w = np.asarray(algo.weights(q, v))
    np.testing.assert_allclose(w, np.minimum(np.exp(3.0 * u), 100.0), rtol=1e-5)
    assert float(jnp.max(algo.weights(q + 100.0, v))) == 100.0
    mean, log_std = algo.actor.apply({"params": p["actor"]}, b.obs)
    lp = np.asarray(gaussian_log_prob(mean, log_std, b.action))
    assert float(algo.actor_loss(p["actor"], ActorBatch(b.obs, b.action, jnp.asarray(w)))) == \
        pytest.approx(-np.mean(w * lp), rel=1e-5)
    y = np.asarray(algo.td_target(p["value"], b))
    v_next = np.asarray(algo.value.apply({"params": p["value"]}, b.next_obs))
    np.testing.assert_allclose(y, np.asarray(b.reward) + 0.99 * (1 - np.asarray(b.done)) * v_next, rtol=1e-5)


def test_actor_lr_decays_over_the_run():
    cfg = tiny_config("iql").for_run(1000)
    assert cfg.actor_lr_decay_steps == 1000
    assert tiny_config("iql", actor_lr_decay_steps=50).for_run(1000).actor_lr_decay_steps == 50


@pytest.mark.slow
@pytest.mark.parametrize("pruner", ["snip", "erk_random"])
def test_pruned_weights_stay_exactly_zero(pruner):
    algo = make_algorithm(tiny_config("iql").for_run(150), OBS, ACT, 1.0)
    data = _data()
    runs = init_runs(algo, PruneConfig(pruner, **({"score_batch": 50} if pruner == "snip" else {})), data, [0], [0.8])
    runs, metrics = make_train_chunk(algo, 32, 150)(runs, data)
    st = runs.agent
    assert all(np.all(np.isfinite(v)) for k, v in metrics.items() if k != "nan_step")
    masks = st.masks
    assert_zero_where_pruned(st.params, masks, "params")
    assert_zero_where_pruned(st.target_params["critic"], masks["critic"], "critic targets")
    for name, opt in st.opt_state.items():
        assert_zero_where_pruned(opt.inner[0].mu, masks[name], f"{name} adam mu")
    assert np.all(np.asarray(masks["actor"]["log_std"]) == 1.0)  # not a kernel: never pruned


@pytest.mark.slow
def test_value_mask_does_not_depend_on_the_critic_loss():
    algo = tiny_algorithm("iql")
    data = _data()
    a = init_runs(algo, PruneConfig("snip", score_batch=50), data, [0], [0.9]).agent.masks
    b = init_runs(algo, PruneConfig("snip", score_batch=50), data.replace(reward=data.reward + 10.0),
                  [0], [0.9]).agent.masks
    for net in ("value", "actor"):  # the rewards reach only the critic's loss
        for x, y in zip(jax.tree_util.tree_leaves(a[net]), jax.tree_util.tree_leaves(b[net])):
            np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a["critic"]),
                                                         jax.tree_util.tree_leaves(b["critic"])))


@pytest.mark.slow
def test_deploy_acts_with_the_mean_like_the_library(tmp_path):
    algo = tiny_algorithm("iql")
    st = jax.tree_util.tree_map(lambda x: x[0], init_runs(algo, PruneConfig("erk_random"), _data(), [0], [0.7]).agent)
    assert_deploy_acts_like_the_library(tmp_path, algo, st, np.asarray(_data().obs[:9]))


@pytest.mark.parametrize("shape", [(17, 256), pytest.param((256, 256), marks=pytest.mark.slow), (256, 6)])
def test_orthogonal_init_is_flax_orthogonal_and_vmaps_run_by_run(shape):
    import flax.linen as nn

    from sparse_orl.algos.networks import orthogonal_init

    key = jax.random.PRNGKey(3)
    init = orthogonal_init(np.sqrt(2.0))
    w = np.asarray(init(key, shape))
    np.testing.assert_allclose(w, np.asarray(nn.initializers.orthogonal(np.sqrt(2.0))(key, shape)), atol=1e-5)
    small = w.T @ w if shape[0] >= shape[1] else w @ w.T  # orthonormal columns (or rows), times √2²
    np.testing.assert_allclose(small, 2.0 * np.eye(min(shape)), atol=1e-4)
    keys = jax.random.split(key, 3)
    batched = np.asarray(jax.jit(jax.vmap(lambda k: init(k, shape)))(keys))
    for i in range(3):
        np.testing.assert_array_equal(batched[i], np.asarray(init(keys[i], shape)))
