"""Tests for sparse_orl.job.evaluation (batched first-episode returns on Gymnasium vector envs)."""
import gymnasium as gym
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_orl.job.evaluation import env_spaces, episode_seeds, evaluate_policies, make_env

ENV_ID = "SparseOrlCount-v0"
POST_RESET_REWARD = 1000.0  # reward in episodes started by an (unseeded) autoreset


class CountEnv(gym.Env):
    """Episode length 1 + seed % 9 (seeded reset); reward 1 per step.

    Episodes started by an unseeded reset (the vector env's autoreset) pay POST_RESET_REWARD per
    step, so any reward counted after the first done shows up. An action of exactly +1 ends the
    episode at once; actions outside [-1, 1] raise (so unclipped actions fail loudly).
    obs = [t, episode length].
    """

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    resets = []  # seeds of every reset, in order (all envs are in-process: SyncVectorEnv)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        CountEnv.resets.append(seed)
        self._seeded = seed is not None
        self._len = 1 + seed % 9 if seed is not None else 50
        self._t = 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self._t, self._len], dtype=np.float32)

    def step(self, action):
        if not self.action_space.contains(np.asarray(action, dtype=np.float32)):
            raise AssertionError(f"action {action} outside the action space")
        self._t += 1
        terminated = self._t >= self._len or float(action[0]) == 1.0
        reward = 1.0 if self._seeded else POST_RESET_REWARD
        return self._obs(), reward, terminated, False, {}


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=CountEnv)


def zero_policy(obs):
    return np.zeros(obs.shape[:2] + (1,), np.float32)


def hand_lengths(seed, num_runs, episodes, eval_index=0, run_offset=0):
    """Episode lengths written out from the documented seed formula."""
    out = np.zeros((num_runs, episodes))
    for i in range(num_runs):
        for e in range(episodes):
            s = np.random.SeedSequence([seed, eval_index, run_offset + i, e]).generate_state(1)[0]
            out[i, e] = 1 + int(s) % 9
    return out


def test_returns_are_exact_first_episode_lengths():
    ret = evaluate_policies(zero_policy, ENV_ID, num_runs=3, episodes=5, seed=7)
    assert ret.shape == (3, 5) and ret.dtype == np.float64
    expected = hand_lengths(7, 3, 5)
    assert len(np.unique(expected)) > 1  # envs really finish at different steps
    # Any reward after an env's first done would add >= 1000.
    np.testing.assert_array_equal(ret, expected)


def test_seed_helper_matches_formula_and_is_distinct():
    s = episode_seeds(7, 3, 5, eval_index=2)
    assert s.shape == (3, 5)
    for r in range(3):
        for e in range(5):
            assert s[r, e] == np.random.SeedSequence([7, 2, r, e]).generate_state(1)[0]
    assert len(np.unique(s)) == 15
    # Seeds of run r do not depend on num_runs / episodes.
    np.testing.assert_array_equal(episode_seeds(7, 1, 5, 2, run_offset=1), s[1:2])
    np.testing.assert_array_equal(episode_seeds(7, 3, 2, 2), s[:, :2])
    with pytest.raises(ValueError):
        episode_seeds(-1, 1, 1)


def test_envs_are_reset_with_distinct_deterministic_seeds():
    CountEnv.resets.clear()
    evaluate_policies(zero_policy, ENV_ID, num_runs=2, episodes=4, seed=3, eval_index=1)
    first = CountEnv.resets[:8]
    assert first == [int(x) for x in episode_seeds(3, 2, 4, eval_index=1).reshape(-1)]
    assert len(set(first)) == 8
    # A later evaluation index gets fresh episodes.
    other = set(int(x) for x in episode_seeds(3, 2, 4, eval_index=2).reshape(-1))
    assert not (set(first) & other)


def test_truncation_and_action_dependent_termination_with_clipping():
    ret = evaluate_policies(zero_policy, ENV_ID, 2, 6, seed=1, max_episode_steps=3)
    np.testing.assert_array_equal(ret, np.minimum(hand_lengths(1, 2, 6), 3))

    def policy(obs):  # run 1 asks for +5 -> clipped to +1 -> ends after one step
        a = np.full(obs.shape[:2] + (1,), -5.0, np.float32)  # clipped to -1: no effect
        a[1] = 5.0
        return a

    ret = evaluate_policies(policy, ENV_ID, 3, 4, seed=1)
    expected = hand_lengths(1, 3, 4)
    expected[1] = 1.0
    np.testing.assert_array_equal(ret, expected)


def test_run_alone_equals_run_in_batch():
    # Identical, observation-dependent policy in every run: stop at step 5 (jax output).
    def policy(obs):
        return jnp.where(obs[..., :1] >= 4.0, 1.0, 0.0)

    batch = evaluate_policies(policy, ENV_ID, num_runs=3, episodes=4, seed=11, eval_index=5)
    np.testing.assert_array_equal(batch, np.minimum(hand_lengths(11, 3, 4, 5), 5))
    for r in range(3):
        alone = evaluate_policies(
            policy, ENV_ID, num_runs=1, episodes=4, seed=11, eval_index=5, run_offset=r
        )
        np.testing.assert_array_equal(alone[0], batch[r])
    np.testing.assert_array_equal(
        evaluate_policies(policy, ENV_ID, 1, 4, seed=11, eval_index=5)[0], batch[0]
    )


def test_wrong_action_shape_raises():
    with pytest.raises(ValueError, match="shape"):
        evaluate_policies(lambda o: np.zeros(o.shape[:2]), ENV_ID, 2, 3, seed=0)
    with pytest.raises(ValueError, match="shape"):
        evaluate_policies(lambda o: np.zeros((6, 1)), ENV_ID, 2, 3, seed=0)


def test_obs_batch_layout_and_nan_actions():
    seen = []

    def policy(obs):
        seen.append(obs)
        a = np.zeros(obs.shape[:2] + (1,), np.float32)
        a[0, 1] = np.nan
        return a

    ret = evaluate_policies(policy, ENV_ID, 2, 3, seed=4)
    assert seen[0].dtype == np.float32 and seen[0].shape == (2, 3, 2)
    np.testing.assert_array_equal(seen[0][..., 1], hand_lengths(4, 2, 3))  # [r, e] layout
    expected = hand_lengths(4, 2, 3)
    expected[0, 1] = np.nan
    np.testing.assert_array_equal(ret, expected)


def test_unknown_env_id_raises_value_error():
    for fn in (lambda: make_env("Foo-v0"), lambda: env_spaces("Foo-v0"),
               lambda: evaluate_policies(zero_policy, "Foo-v0", 1, 1, seed=0)):
        with pytest.raises(ValueError, match="Foo-v0"):
            fn()
    with pytest.raises(ValueError, match="HalfCheetah-v99"):
        make_env("HalfCheetah-v99")


def test_halfcheetah_smoke():
    assert env_spaces("HalfCheetah-v5") == (17, 6, 1.0)
    ret = evaluate_policies(
        lambda o: np.zeros(o.shape[:2] + (6,), np.float32), "HalfCheetah-v5",
        num_runs=2, episodes=2, seed=0, max_episode_steps=20,
    )
    assert ret.shape == (2, 2) and ret.dtype == np.float64
    assert np.all(np.isfinite(ret))
    assert len(np.unique(ret)) == 4  # distinct start states
