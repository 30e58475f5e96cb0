"""TD3+BC: target and losses by hand, policy delay, exact zeros, masks from each network's own loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import (ACT, OBS, assert_deploy_acts_like_the_library, assert_state_zero_where_pruned, numpy_mlp,
                      random_transitions, tiny_algorithm)
from sparse_orl.algos.td3bc import ActorBatch
from sparse_orl.config import PruneConfig
from sparse_orl.trainer.runs import init_runs, make_train_chunk

_data = random_transitions
_mlp = numpy_mlp


def test_target_and_actor_loss_match_hand_computation():
    algo = tiny_algorithm("td3bc", max_action=2.0)
    params = algo.init_params(jax.random.PRNGKey(0))
    b = jax.tree_util.tree_map(lambda x: x[:6], _data())
    key = jax.random.PRNGKey(3)
    y = np.asarray(algo.critic_target(params, b, key))
    p = jax.tree_util.tree_map(np.asarray, params)
    eps = np.clip(0.2 * 2.0 * np.asarray(jax.random.normal(key, (6, ACT))), -1.0, 1.0)
    a = np.clip(2.0 * np.tanh(_mlp(p["actor"]["net"], np.asarray(b.next_obs, np.float64))) + eps, -2, 2)
    sa = np.concatenate([np.asarray(b.next_obs, np.float64), a], -1)
    q = np.minimum(_mlp(p["critic"]["q1"]["net"], sa)[:, 0], _mlp(p["critic"]["q2"]["net"], sa)[:, 0])
    want = np.asarray(b.reward) + 0.99 * (1 - np.asarray(b.done)) * q
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    pi = 2.0 * np.tanh(_mlp(p["actor"]["net"], np.asarray(b.obs, np.float64)))
    q1 = _mlp(p["critic"]["q1"]["net"], np.concatenate([np.asarray(b.obs, np.float64), pi], -1))[:, 0]
    want_loss = -(2.5 / np.mean(np.abs(q1))) * q1.mean() + np.mean((pi - np.asarray(b.action)) ** 2)
    got = float(algo.actor_loss_fn(params["critic"]["q1"])(params["actor"], ActorBatch(b.obs, b.action)))
    np.testing.assert_allclose(got, want_loss, rtol=1e-5)


def test_policy_delay_targets_move_only_on_actor_steps():
    algo = tiny_algorithm("td3bc", normalize_obs=False)
    runs = init_runs(algo, PruneConfig("dense"), _data(), [0], [0.0])
    st0 = jax.tree_util.tree_map(lambda x: x[0], runs.agent)
    batch = jax.tree_util.tree_map(lambda x: x[:32], _data())
    st1, m1 = jax.jit(algo.train_step)(st0, batch, jax.random.PRNGKey(1))  # step 1: critic only
    same = jax.tree_util.tree_map(lambda a, b: bool(jnp.all(a == b)), st1.target_params, st0.target_params)
    assert all(jax.tree_util.tree_leaves(same)) and float(m1["actor_loss"]) == 0.0
    assert all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda a, b: bool(jnp.all(a == b)),
                                                               st1.params["actor"], st0.params["actor"])))
    st2, m2 = jax.jit(algo.train_step)(st1, batch, jax.random.PRNGKey(2))  # step 2: actor + targets
    moved = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), st2.target_params["actor"],
                                   st1.target_params["actor"])
    assert any(jax.tree_util.tree_leaves(moved)) and float(m2["actor_loss"]) != 0.0
    np.testing.assert_allclose(jax.tree_util.tree_leaves(st2.target_params["critic"])[0],
                               0.995 * jax.tree_util.tree_leaves(st1.target_params["critic"])[0]
                               + 0.005 * jax.tree_util.tree_leaves(st2.params["critic"])[0], rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_policy_delay_is_a_branch_under_vmap_and_map_equals_vmap():
    """The actor update is skipped, not computed and discarded, with vmapped runs too

    (vmap turns a ``lax.cond`` on a batched step into a select of both branches), and
    chunks of odd length (the delay crossing chunk ends) give the same runs either way.
    """
    algo = tiny_algorithm("td3bc")
    data = _data()
    out = {}
    for loop in ("map", "vmap"):
        runs = init_runs(algo, PruneConfig("erk_random"), data, [0, 1, 2], [0.0, 0.5, 0.9])
        for n in (None, 3):
            chunk = make_train_chunk(algo, 32, n, runs_loop=loop)
            args = (runs, data) if n else (runs, data, jnp.int32(3))
            assert "stablehlo.case" in chunk.lower(*args).as_text(), (loop, n)
        dyn = make_train_chunk(algo, 32, None, runs_loop=loop)
        sums = 0.0
        for n in (3, 5, 1):
            runs, m = dyn(runs, data, jnp.int32(n))
            sums = sums + n * np.asarray(m["actor_loss"])
        out[loop] = runs, sums
    (a, sa), (b, sb) = out["map"], out["vmap"]
    assert np.all(np.asarray(a.agent.step) == 9) and np.all(np.asarray(b.agent.step) == 9)
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5),
                           (a.agent.params, a.agent.target_params), (b.agent.params, b.agent.target_params))
    np.testing.assert_allclose(sa, sb, rtol=1e-4)
    assert np.all(sa != 0)  # 4 actor steps in 9, whichever chunk they fell in


@pytest.mark.parametrize("pruner", [pytest.param("snip", marks=pytest.mark.slow), "erk_random",
                                    pytest.param("synflow", marks=pytest.mark.slow)])
def test_pruned_weights_stay_exactly_zero_in_params_targets_and_moments(pruner):
    algo = tiny_algorithm("td3bc")
    data = _data()
    runs = init_runs(algo, PruneConfig(pruner, **({"score_batch": 50} if pruner == "snip" else {})), data, [0, 1],
                     [0.8, 0.8])
    runs, metrics = make_train_chunk(algo, 32, 200)(runs, data)
    st = runs.agent
    assert np.all(np.isfinite(metrics["critic_loss"]))
    masks = st.masks
    np.testing.assert_array_equal(masks["critic"]["q1"]["net"]["l1"]["kernel"], masks["critic"]["q2"]["net"]["l1"]["kernel"])
    assert_state_zero_where_pruned(st)
    kernels = [m for p, m in jax.tree_util.tree_flatten_with_path(algo.scored_view(masks))[0] if p[-1].key == "kernel"]
    kept = sum(int(np.asarray(m[0]).sum()) for m in kernels)
    total = sum(np.asarray(m[0]).size for m in kernels)
    assert abs(kept - 0.2 * total) <= 2  # each network keeps n − round(0.8·n)


def test_actor_mask_does_not_depend_on_the_critic_loss():
    algo = tiny_algorithm("td3bc")
    data = _data()
    a = init_runs(algo, PruneConfig("snip", score_batch=50), data, [0], [0.9]).agent.masks
    shifted = data.replace(reward=data.reward + 100.0)  # changes y, hence the critic's loss only
    b = init_runs(algo, PruneConfig("snip", score_batch=50), shifted, [0], [0.9]).agent.masks
    for x, y in zip(jax.tree_util.tree_leaves(a["actor"]), jax.tree_util.tree_leaves(b["actor"])):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a["critic"]),
                                                         jax.tree_util.tree_leaves(b["critic"])))


def test_deploy_acts_like_the_library(tmp_path):
    algo = tiny_algorithm("td3bc", max_action=1.5)
    st = jax.tree_util.tree_map(lambda x: x[0], init_runs(algo, PruneConfig("erk_random"), _data(), [0], [0.7],
                                                          np.full(OBS, 0.3, np.float32), np.full(OBS, 2.0, np.float32)).agent)
    assert_deploy_acts_like_the_library(tmp_path, algo, st, np.asarray(_data().obs[:9]))
