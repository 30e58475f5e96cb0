"""What every test file shares: the JAX settings of the suite, the ``slow`` tier, tiny datasets
(Minari rollouts, D4RL files, random transitions), tiny algorithms, and the checks many files make.

Two tiers: ``python -m pytest -m "not slow" tests`` is the fast tier (library code in this
process); tests marked ``@pytest.mark.slow`` start subprocesses (launchers, several processes
or devices) or compile whole jobs. The full suite runs both.
"""
import contextlib
import os

# Tests run on the CPU with jax's defaults (no x64, no forced thread settings).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The suite is bound by XLA compile time of tiny programs, not by their run time: skipping
# LLVM's backend optimizations halves it. Results stay deterministic, and every comparison
# in the tests is between programs compiled the same way. Subprocesses inherit it.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import subprocess
import sys
import warnings

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_ID = "test/hopper/launch-v0"  # the Minari dataset of tiny_minari_root
OBS, ACT = 5, 2  # the shapes of random_transitions and tiny_algorithm
# hidden widths of the tiny algorithms of the unit tests (each network a few hundred weights)
TINY_HIDDEN = {
    "bcq": dict(actor_hidden=(8, 8), critic_hidden=(8, 8), vae_hidden=(12, 12)),
    "bc": dict(actor_hidden=(8, 8), critic_hidden=(8, 8), vae_hidden=(12, 12)),
    "td3bc": dict(actor_hidden=(8, 8), critic_hidden=(8, 8)),
    "iql": dict(actor_hidden=(8, 8), critic_hidden=(8, 8), value_hidden=(8, 8)),
}


# ---- the two tiers ------------------------------------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts subprocesses (launchers, several processes or devices) or "
                                       "compiles whole jobs; deselect with -m 'not slow' for the fast tier")


def pytest_sessionfinish(session, exitstatus):
    """No test collected is a failure, not a quiet pass: a wrong path or a -m / -k that selects
    nothing must not turn a CI job green (pytest's exit code 5 is easy to whitelist by mistake)."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("error: no tests were collected (check the paths and the -m / -k expressions)",
                                red=True)


# ---- subprocesses ------------------------------------------------------------------------------
def subprocess_env(**extra):
    """The environment of a launcher started by a test: CPU JAX, this checkout importable."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH", "")) if p)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_launcher(module, args, cwd, env=None, stderr=subprocess.PIPE, **kw):
    """``python -m <module> <args>`` started in ``cwd`` (text pipes; ``stderr=subprocess.STDOUT`` merges)."""
    return subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=stderr, text=True,
                            env=env or subprocess_env(), cwd=str(cwd), **kw)


def run_launcher(module, args, cwd, env=None, timeout=300):
    """``python -m <module> <args>`` run to the end: its CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=env or subprocess_env(), cwd=str(cwd), timeout=timeout)


def error_lines(stderr):
    """The launchers' one-line errors in ``stderr``."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# ---- tiny Minari datasets ------------------------------------------------------------------------
@contextlib.contextmanager
def minari_datasets(root, cwd=None):
    """MINARI_DATASETS_PATH set to ``root`` and the cwd ``cwd`` (default ``root``; MuJoCo writes
    MUJOCO_LOG.TXT into the cwd), both restored afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        mp.chdir(cwd or root)
        yield root


def make_minari(dataset_id, episodes=6, max_steps=30, **create_kwargs):
    """Random-action Hopper-v5 rollouts (reset seeds 0..episodes-1, ``max_steps`` limit) saved as a
    Minari dataset under MINARI_DATASETS_PATH; ``create_kwargs`` go to ``create_dataset``."""
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
        warnings.simplefilter("ignore")  # author/permalink/description warnings
        env.create_dataset(dataset_id, **create_kwargs)
    env.close()


@pytest.fixture(scope="session")
def tiny_minari_root(tmp_path_factory):
    """A MINARI_DATASETS_PATH with the tiny Hopper dataset ``TINY_ID`` (built once per session)."""
    root = tmp_path_factory.mktemp("minari_launch")
    with minari_datasets(root):
        make_minari(TINY_ID)
    return root


@pytest.fixture
def minari_env(tiny_minari_root, monkeypatch, tmp_path):
    """This test sees the tiny Minari dataset and runs in its own tmp_path."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_minari_root))
    monkeypatch.chdir(tmp_path)
    return tiny_minari_root


# ---- tiny D4RL files and transitions ------------------------------------------------------------------
def write_h5(path, **arrays):
    """A D4RL-style HDF5 file holding ``arrays`` (observations, actions, rewards, terminals, ...)."""
    import h5py

    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return str(path)


def write_random_d4rl(path, n=50, obs_dim=11, act_dim=3, nan=False):
    """A D4RL file of ``n`` random Hopper-shaped transitions (seed 0); ``nan``: one NaN observation."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    if nan and n:
        obs[3, 2] = np.nan
    return write_h5(path, observations=obs, actions=rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
                    rewards=rng.normal(size=n).astype(np.float32), terminals=np.zeros(n, bool),
                    timeouts=np.zeros(n, bool), next_observations=rng.normal(size=(n, obs_dim)).astype(np.float32))


def random_transitions(n=200, obs_dim=OBS, act_dim=ACT, seed=0, done_frac=0.2):
    """Random float32 transitions (actions in [-1, 1], about ``done_frac`` of them terminal)."""
    import jax.numpy as jnp

    from sparse_orl.data.transitions import Transitions

    rng = np.random.default_rng(seed)
    return Transitions(
        obs=jnp.asarray(rng.normal(size=(n, obs_dim)), jnp.float32),
        action=jnp.asarray(rng.uniform(-1, 1, size=(n, act_dim)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=n), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(n, obs_dim)), jnp.float32),
        done=jnp.asarray(rng.uniform(size=n) < done_frac, jnp.float32))


# ---- tiny algorithms ----------------------------------------------------------------------------
def tiny_config(algo, **fields):
    """``algo``'s config with the tiny hidden widths (``fields`` override them and set the rest)."""
    from sparse_orl.algos import make_config

    return make_config(algo, **{**TINY_HIDDEN[algo], **fields})


def tiny_algorithm(algo, obs_dim=OBS, act_dim=ACT, max_action=1.0, **fields):
    """The tiny ``algo`` built for ``obs_dim`` / ``act_dim`` (see :func:`tiny_config`)."""
    from sparse_orl.algos import make_algorithm

    return make_algorithm(tiny_config(algo, **fields), obs_dim, act_dim, max_action)


def numpy_mlp(p, x):
    """A ReLU MLP of flax ``{"l1": {"kernel", "bias"}, ...}`` layers in float64 numpy, written
    independently of the library's modules."""
    names = sorted(p, key=lambda k: int(k[1:]))
    for name in names:
        x = x @ np.asarray(p[name]["kernel"], np.float64) + np.asarray(p[name]["bias"], np.float64)
        if name != names[-1]:
            x = np.maximum(x, 0.0)
    return x


# ---- finished workdirs (one program, or several: dense, main, narrow-<level>) -----------------------
def program_folders(workdir):
    """The folders of a finished workdir's programs, in its summary's order (the workdir itself if one)."""
    from sparse_orl.store.summary import read_summary

    summary = read_summary(str(workdir))
    if summary is None or not summary.programs:
        return [str(workdir)]
    return [os.path.join(str(workdir), p) for p in summary.programs.values()]


def metrics_rows(workdir):
    """Every program's ``metrics.jsonl`` rows, programs in the summary's order."""
    from sparse_orl.store.atomic import read_jsonl

    return [row for folder in program_folders(workdir) for row in read_jsonl(os.path.join(folder, "metrics.jsonl"))]


def final_runs(workdir):
    """(agent config of the first program, every run's final params) in the summary's run order."""
    from sparse_orl.store.final import load_final, run_folders

    loaded = {}
    runs = []
    for folder, i, _ in run_folders(str(workdir)):
        if folder not in loaded:
            loaded[folder] = load_final(folder)
        runs.append(loaded[folder][1][i])
    return next(iter(loaded.values()))[0], runs


# ---- checks -----------------------------------------------------------------------------------------
def assert_zero_where_pruned(tree, masks, what=""):
    """Every leaf of ``tree`` is exactly 0 wherever its mask in ``masks`` (the same structure) is 0."""
    import jax

    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    mask_leaves = jax.tree_util.tree_leaves(masks)
    assert len(leaves) == len(mask_leaves), what
    for (path, x), m in zip(leaves, mask_leaves):
        x, m = np.asarray(x), np.asarray(m)
        assert np.all(x[m == 0] == 0.0), f"{what}{jax.tree_util.keystr(path)}"


def assert_state_zero_where_pruned(state):
    """A train state's params, Polyak targets and every network's Adam moments are exact zeros
    wherever its masks prune."""
    masks = state.masks
    assert_zero_where_pruned(state.params, masks, "params")
    assert_zero_where_pruned(state.target_params, {k: masks[k] for k in state.target_params}, "targets")
    for name, opt in state.opt_state.items():
        adam = opt.inner[0]
        assert_zero_where_pruned(adam.mu, masks[name], f"{name} adam mu")
        assert_zero_where_pruned(adam.nu, masks[name], f"{name} adam nu")


def assert_deploy_acts_like_the_library(tmp_path, algo, state, obs):
    """The acting networks of one run's ``state`` exported to a compact file act in the numpy-only
    deploy loader (dense and sparse kernels) as ``algo.act`` does."""
    import jax

    from sparse_orl import deploy, export

    params = jax.tree_util.tree_map(np.asarray, state.params)
    masks = jax.tree_util.tree_map(np.asarray, state.masks)
    nets = sorted({p.split("/")[0] for p in algo.acting_networks})
    meta = {"config": algo.config.to_dict() | {"obs_dim": algo.obs_dim, "act_dim": algo.act_dim,
                                               "max_action": algo.max_action},
            "acting": algo.acting_program(), "obs_mean": np.asarray(state.obs_mean),
            "obs_std": np.asarray(state.obs_std)}
    path = str(tmp_path / f"{algo.config.algo}.soc")
    export.save_compact(path, {n: params[n] for n in nets}, {n: masks[n] for n in nets}, meta)
    want = np.asarray(algo.act(state.params, state.obs_mean, state.obs_std, obs, None))
    for sparse in (False, True):
        np.testing.assert_allclose(deploy.Policy.load(path, sparse=sparse).act(obs), want, rtol=1e-5, atol=1e-5)
