import os

# Tests run on the CPU with jax's defaults (no x64, no forced thread settings).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The suite is bound by XLA compile time of tiny programs, not by their run time: skipping
# LLVM's backend optimizations halves it. Results stay deterministic, and every comparison
# in the tests is between programs compiled the same way. Subprocesses inherit it.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import warnings

import pytest

TINY_ID = "test/hopper/launch-v0"


def make_tiny_minari(root, dataset_id=TINY_ID, episodes=6, max_steps=30):
    """Random-action Hopper-v5 rollouts saved as a Minari dataset under ``root``."""
    import gymnasium as gym
    import minari

    env = minari.DataCollector(gym.make("Hopper-v5", max_episode_steps=max_steps))
    env.action_space.seed(0)
    for s in range(episodes):
        env.reset(seed=s)
        while True:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env.create_dataset(dataset_id)
    env.close()


@pytest.fixture(scope="session")
def tiny_minari_root(tmp_path_factory):
    """MINARI_DATASETS_PATH with a tiny Hopper dataset ``TINY_ID`` (built once per session)."""
    root = tmp_path_factory.mktemp("minari_launch")
    old_cwd = os.getcwd()
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    os.chdir(root)  # MuJoCo writes MUJOCO_LOG.TXT into the cwd
    try:
        make_tiny_minari(root)
    finally:
        os.chdir(old_cwd)
        if old is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = old
    return root


def random_transitions(n=200, obs_dim=5, act_dim=2, seed=0, done_frac=0.2):
    """Random float32 transitions (actions in [-1, 1], about ``done_frac`` of them terminal)."""
    import jax.numpy as jnp
    import numpy as np

    from sparse_orl.data.transitions import Transitions

    rng = np.random.default_rng(seed)
    return Transitions(
        obs=jnp.asarray(rng.normal(size=(n, obs_dim)), jnp.float32),
        action=jnp.asarray(rng.uniform(-1, 1, size=(n, act_dim)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=n), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(n, obs_dim)), jnp.float32),
        done=jnp.asarray(rng.uniform(size=n) < done_frac, jnp.float32))
