"""``--max_transitions`` (each seed trains, scores and normalizes on its own uniform subset) and
``--width_multiplier`` (the pruned networks' hidden widths times K, their kept counts n_wide − round(s·n_wide)).

Mostly unit level; two tiny real jobs check what a workdir records (final observation statistics per
seed across programs and a resume, the masks report of a widened network).
"""
import dataclasses
import os
import subprocess
import sys

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import random_transitions
from sparse_orl.algos import make_config
from sparse_orl.algos.registry import make_algorithm
from sparse_orl.config import ExperimentConfig, LogConfig, PruneConfig
from sparse_orl.data.transitions import DatasetInfo, obs_stats, sample_batch, subset_indices, take_rows
from sparse_orl.job.data import JobData
from sparse_orl.job.narrow import kernel_counts
from sparse_orl.job.run import plan_programs, run_experiment
from sparse_orl.pruning.masks import num_kept

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = LogConfig(report=False, tensorboard=False)


def _dataset(folder, n=300, seed=0, name="hopper_budget.hdf5"):
    path = os.path.join(str(folder), name)
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 11)).astype(np.float32) * rng.uniform(0.5, 3, size=11).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["next_observations"] = np.roll(obs, -1, 0)
        f["actions"] = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
        f["rewards"] = rng.normal(size=n).astype(np.float32)
        f["terminals"] = np.zeros(n, bool)
        f["timeouts"] = (np.arange(n) % 30) == 29
    return path


def _indexed(n=200, obs_dim=5):
    """Random transitions whose first observation feature is the row's index."""
    t = random_transitions(n=n, obs_dim=obs_dim)
    return t.replace(obs=t.obs.at[:, 0].set(jnp.arange(n, dtype=jnp.float32)))


def _info(n, obs_dim=5, act_dim=2):
    return DatasetInfo("test", None, obs_dim, act_dim, 1.0, None, None, "none", "0" * 64, 1, n)


# ---- the subset ------------------------------------------------------------------------------
def test_a_seeds_subset_is_n_distinct_rows_fixed_by_the_seed_alone():
    subsets = {}
    for seed in range(6):
        a = subset_indices(seed, 1000, 100)
        np.random.seed(seed + 123)  # the global numpy stream plays no part
        np.random.permutation(50)
        b = subset_indices(seed, 1000, 100)
        assert a.dtype == np.int32 and np.array_equal(a, b)
        assert len(np.unique(a)) == 100 and np.all(np.diff(a) > 0) and 0 <= a.min() and a.max() < 1000
        subsets[seed] = a
    for s in range(6):
        for t in range(s + 1, 6):
            assert not np.array_equal(subsets[s], subsets[t]), (s, t)
    # every program of a job, and a resumed one, asks JobData: the same rows per seed whatever the order
    job_a = JobData(random_transitions(n=1000), _info(1000), "Env-v0", max_transitions=100)
    job_b = JobData(random_transitions(n=1000), _info(1000), "Env-v0", max_transitions=100)
    got_a, got_b = job_a.subsets([0, 3, 5]), job_b.subsets([5, 0])
    assert got_a.shape == (3, 100) and np.array_equal(got_a[0], subsets[0]) and np.array_equal(got_a[2], got_b[0])
    assert JobData(random_transitions(n=10), _info(10), "Env-v0").subsets([0]) is None
    for bad in (0, 1001):
        with pytest.raises(ValueError, match=r"^--max_transitions=\d+ must be in \[1, 1000\]"):
            subset_indices(0, 1000, bad)
    assert np.array_equal(subset_indices(4, 1000, 1000), np.arange(1000))  # N = the dataset: every row


def test_the_first_rule_is_the_datasets_first_rows_for_every_seed():
    for seed in (0, 3, 9):
        np.testing.assert_array_equal(subset_indices(seed, 1000, 120, "first"), np.arange(120, dtype=np.int32))
    job = JobData(random_transitions(n=1000), _info(1000), "Env-v0", max_transitions=100, data_subset="first")
    got = job.subsets([0, 7])
    assert got.shape == (2, 100) and np.array_equal(got[0], np.arange(100)) and np.array_equal(got[1], got[0])
    assert job.subset_text() == "; every seed on the first 100 of 1,000 transitions (whole episodes, file order)"
    with pytest.raises(ValueError, match=r"^--data_subset must be uniform or first, got 'last'$"):
        subset_indices(0, 1000, 10, "last")
    with pytest.raises(ValueError, match=r"^--max_transitions=1001 must be in \[1, 1000\]"):
        subset_indices(0, 1000, 1001, "first")


def test_the_first_rule_needs_a_budget_and_is_part_of_the_identity(tmp_path):
    from sparse_orl.job.program import identity

    with pytest.raises(ValueError, match=r"^--data_subset=first needs --max_transitions \(the subset's size\)$"):
        ExperimentConfig(dataset="d.hdf5", workdir=str(tmp_path), data_subset="first").validate()
    uniform = ExperimentConfig(dataset="d.hdf5", workdir=str(tmp_path), max_transitions=50)
    first = dataclasses.replace(uniform, data_subset="first")
    assert identity(first) != identity(uniform) and "data_subset" not in identity(uniform)


def test_a_seeds_subset_is_the_same_in_another_process():
    code = ("from sparse_orl.data.transitions import subset_indices\n"
            "print(','.join(str(i) for i in subset_indices(7, 5000, 40)))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO))
    assert p.returncode == 0, p.stderr
    assert [int(x) for x in p.stdout.strip().split(",")] == subset_indices(7, 5000, 40).tolist()


def test_batches_are_drawn_from_the_subset_only():
    data = _indexed(200)
    subset = jnp.asarray(subset_indices(1, 200, 10))
    rows = set()
    for i in range(5):
        b = sample_batch(data, jax.random.PRNGKey(i), 500, subset)
        rows |= set(np.asarray(b.obs[:, 0]).astype(int).tolist())
    assert rows == set(np.asarray(subset).tolist())  # only subset rows, and each of them (uniform)
    under_vmap = jax.vmap(lambda k, s: sample_batch(data, k, 64, s).obs[:, 0])(
        jax.random.split(jax.random.PRNGKey(0), 2), jnp.stack([subset, jnp.asarray(subset_indices(2, 200, 10))]))
    assert set(np.asarray(under_vmap[0]).astype(int)) <= set(np.asarray(subset).tolist())
    assert set(np.asarray(under_vmap[1]).astype(int)) <= set(subset_indices(2, 200, 10).tolist())


def test_pruning_score_batches_are_drawn_from_the_subset_only(monkeypatch):
    from sparse_orl.trainer import initialize

    data = _indexed(200)
    subset = subset_indices(3, 200, 12)
    seen = []

    def recording(d, key, size, sub=None):
        batch = sample_batch(d, key, size, sub)
        seen.append(np.asarray(batch.obs[:, 0]).astype(int))
        return batch

    monkeypatch.setattr(initialize, "sample_batch", recording)
    algo = make_algorithm(make_config("bc", vae_only=True, vae_hidden=(8, 8)), 5, 2, 1.0)
    params = algo.init_params(jax.random.PRNGKey(0))
    mean, std = np.zeros(5, np.float32), np.ones(5, np.float32)
    for prune in (PruneConfig("snip", score_batch=300),):  # every method samples its batch in compute_masks
        seen.clear()
        initialize.compute_masks(algo, params, data, prune, 0.5, jax.random.PRNGKey(1), mean, std, jnp.asarray(subset))
        assert len(seen) == 1 and len(seen[0]) == 300 and set(seen[0].tolist()) <= set(subset.tolist()), prune.pruner


def test_training_and_warmup_batches_never_read_a_row_outside_the_subset():
    """Rows outside each run's subset hold NaN: a batch that read one would turn the loss non-finite."""
    from sparse_orl.trainer import initialize
    from sparse_orl.trainer.runs import init_runs, make_train_chunk

    n = 200
    subsets = np.stack([subset_indices(s, n, 20) for s in (0, 1)])
    inside = np.zeros(n, bool)
    inside[subsets.ravel()] = True
    clean = random_transitions(n=n, obs_dim=5)
    poisoned = clean.replace(obs=jnp.where(jnp.asarray(inside)[:, None], clean.obs, jnp.nan))
    algo = make_algorithm(make_config("bc", vae_only=True, vae_hidden=(8, 8)), 5, 2, 1.0)
    prune = PruneConfig("random")
    chunk = make_train_chunk(algo, 16, 30)

    # each run trains on its own subset; the two subsets' rows are the only finite ones
    runs = init_runs(algo, prune, poisoned, [0, 1], [0.5, 0.5], subsets=subsets)
    assert np.array_equal(np.asarray(runs.subset), subsets)
    _, metrics = chunk(runs, poisoned)
    assert np.all(np.asarray(metrics["nan_step"]) == -1), metrics["nan_step"]
    # the control (the same compiled programs): subsets of poisoned rows break the runs
    outside = np.flatnonzero(~inside)[:40].reshape(2, 20).astype(np.int32)
    _, metrics = chunk(init_runs(algo, prune, poisoned, [0, 1], [0.5, 0.5], subsets=outside), poisoned)
    assert np.all(np.asarray(metrics["nan_step"]) >= 0)

    # the dense warm-up before scoring (--warmup_steps) samples the subset too
    warm = PruneConfig("snip", score_batch=32, warmup_steps=5, warmup_batch=16)
    params = algo.init_params(jax.random.PRNGKey(0))
    mean, std = np.zeros(5, np.float32), np.ones(5, np.float32)
    out = initialize.warmup_params(algo, params, poisoned, warm, jax.random.PRNGKey(2), mean, std,
                                   jnp.asarray(subsets[0]))
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(out))


def test_observation_statistics_come_from_each_seeds_subset():
    t = random_transitions(n=500, obs_dim=5)
    t = t.replace(obs=t.obs * jnp.linspace(0.5, 4.0, 500)[:, None])  # statistics differ between subsets
    job = JobData(t, _info(500), "Env-v0", max_transitions=60)
    mean, std = job.obs_stats(True, [0, 1])
    assert mean.shape == std.shape == (2, 5)
    for i, seed in enumerate((0, 1)):
        m, s = obs_stats(take_rows(t, subset_indices(seed, 500, 60)), True)
        np.testing.assert_array_equal(mean[i], m)
        np.testing.assert_array_equal(std[i], s)
    assert not np.allclose(mean[0], mean[1])
    whole = obs_stats(t, True)[0]
    assert not np.allclose(mean[0], whole)
    off_mean, off_std = job.obs_stats(False, [0, 1])  # normalization off: the identity for every run
    assert np.all(off_mean == 0) and np.all(off_std == 1)


def test_the_budget_and_the_width_are_part_of_the_experiments_identity(tmp_path):
    from sparse_orl.job.program import identity
    from sparse_orl.store.workdir import check_workdir

    cfg = ExperimentConfig(dataset="d.hdf5", workdir=str(tmp_path), max_transitions=50, width_multiplier=2.0)
    os.makedirs(tmp_path / "checkpoints" / "10")  # claimed
    check_workdir(cfg.workdir, cfg)
    for change, shown in ((dict(max_transitions=60), "max_transitions: 50 -> 60"),
                          (dict(max_transitions=None), "max_transitions: 50 -> None"),
                          (dict(width_multiplier=1.5), "width_multiplier: 2.0 -> 1.5")):
        other = dataclasses.replace(cfg, **change)
        with pytest.raises(ValueError, match=rf"holds a different experiment \({shown}\)\. "):
            check_workdir(cfg.workdir, other)
        assert identity(other) != identity(cfg)  # what checkpoints are checked against, config.json or not
    # left at their defaults they are left out: a workdir written before the options existed still matches
    plain = ExperimentConfig(dataset="d.hdf5")
    assert "max_transitions" not in identity(plain) and "width_multiplier" not in identity(plain)


# ---- a real job ------------------------------------------------------------------------------
def _budget_config(tmp_path, **kw):
    base = dict(dataset=_dataset(tmp_path), workdir=str(tmp_path / "wd"),
                agent=make_config("bc", vae_only=True, vae_hidden=(8, 8), normalize_obs=True),
                prunes=(PruneConfig("random"), PruneConfig("narrow")), seeds=(0, 1), sparsities=(0.5,),
                steps=20, batch_size=16, eval_every=20, eval_episodes=0, checkpoint_every=10, max_transitions=50)
    base.update(kw)
    return ExperimentConfig(**base)


@pytest.mark.slow
def test_a_job_trains_each_seed_on_its_subset_in_every_program_and_across_a_resume(tmp_path):
    from sparse_orl.data import load_dataset
    from sparse_orl.store.final import load_final, run_folders

    cfg = _budget_config(tmp_path)
    lines = []
    run_experiment(cfg, log=lines.append, stop_at=10, logs=QUIET)  # killed after the checkpoint at step 10
    summary = run_experiment(cfg, log=lines.append, logs=QUIET)
    assert summary.complete
    assert any("resumed from checkpoint at step 10" in l for l in lines)
    assert any(l.endswith("each seed on its own 50 of 300 transitions") for l in lines), lines
    t, _ = load_dataset(cfg.dataset)
    folders = run_folders(cfg.workdir)
    assert {os.path.basename(f) for f, _, _ in folders} == {"main", "narrow-0.5"}
    finals = {}
    for folder in {f for f, _, _ in folders}:
        finals[folder] = load_final(folder)[1]
    for folder, index, run in folders:
        want_mean, want_std = obs_stats(take_rows(t, subset_indices(run["seed"], t.size, 50)), True)
        got = finals[folder][index]
        np.testing.assert_array_equal(got["obs_mean"], want_mean)
        np.testing.assert_array_equal(got["obs_std"], want_std)
    # the budget is part of what the workdir trains: another one is refused, naming it
    for other, shown in ((60, "max_transitions: 50 -> 60"), (None, "max_transitions: 50 -> None")):
        with pytest.raises(ValueError, match=rf"holds a different experiment \({shown}\)"):
            run_experiment(dataclasses.replace(cfg, max_transitions=other), log=lines.append, logs=QUIET)


@pytest.mark.slow
def test_a_first_rows_job_normalizes_every_seed_by_the_first_rows(tmp_path):
    from sparse_orl.data import load_dataset
    from sparse_orl.store.final import load_final, run_folders

    cfg = _budget_config(tmp_path, data_subset="first", prunes=(PruneConfig("random"),), steps=10, checkpoint_every=10)
    lines = []
    assert run_experiment(cfg, log=lines.append, logs=QUIET).complete
    assert any(l.endswith("every seed on the first 50 of 300 transitions (whole episodes, file order)") for l in lines)
    t, _ = load_dataset(cfg.dataset)
    want_mean, want_std = obs_stats(take_rows(t, np.arange(50)), True)
    folders = run_folders(cfg.workdir)
    finals = load_final(folders[0][0])[1]
    assert len(folders) == 2
    for _, index, _run in folders:
        np.testing.assert_array_equal(finals[index]["obs_mean"], want_mean)
        np.testing.assert_array_equal(finals[index]["obs_std"], want_std)


def test_a_budget_larger_than_the_dataset_is_refused_before_any_work(tmp_path):
    cfg = _budget_config(tmp_path, max_transitions=301)
    with pytest.raises(ValueError) as e:
        run_experiment(cfg, log=lambda _m: None, logs=QUIET)
    assert str(e.value) == f"--max_transitions=301 is more than the 300 transitions of {cfg.dataset}"
    # nothing claimed, nothing trained
    assert not os.path.exists(cfg.workdir) or sorted(os.listdir(cfg.workdir)) in ([], [".train.lock"])


# ---- --width_multiplier ---------------------------------------------------------------------
BCQ = make_config("bcq", actor_hidden=(16, 12), critic_hidden=(10, 10), vae_hidden=(24, 20))


def _widths(agent):
    return {"actor": agent.actor_hidden, "critic": agent.critic_hidden, "vae": agent.vae_hidden}


@pytest.mark.parametrize("k", [0.5, 1.5, 2.0, 3.3, 0.01])
def test_the_pruned_networks_hidden_widths_become_round_h_times_k(k):
    cfg = ExperimentConfig(agent=BCQ, prunes=(PruneConfig("snip"),), width_multiplier=k)
    want = {n: tuple(max(1, int(round(h * k))) for h in w) for n, w in _widths(BCQ).items()}
    assert _widths(cfg.agent_config) == want
    assert cfg.agent == BCQ  # the recorded config keeps the base widths and K
    only = ExperimentConfig(agent=BCQ, prunes=(PruneConfig("snip", prune_networks=("critic",)),), width_multiplier=k)
    assert _widths(only.agent_config) == dict(_widths(BCQ), critic=want["critic"])
    assert ExperimentConfig(agent=BCQ, prunes=(PruneConfig("snip"),)).agent_config is BCQ  # K = 1: unchanged


def test_the_kept_count_of_a_widened_network_is_n_wide_minus_round_s_n_wide():
    from sparse_orl import pruning
    from sparse_orl.trainer.initialize import init_state

    cfg = ExperimentConfig(agent=BCQ, prunes=(PruneConfig("random"),), width_multiplier=2.0)
    wide = cfg.agent_config
    n_wide = kernel_counts(wide, 11, 3, 1.0)
    assert all(n_wide[k] > 2 * v for k, v in kernel_counts(BCQ, 11, 3, 1.0).items())
    algo = make_algorithm(wide, 11, 3, 1.0)
    data = random_transitions(n=64, obs_dim=11, act_dim=3)
    masks_at = jax.jit(lambda s: algo.scored_view(init_state(algo, jax.random.PRNGKey(0), data, cfg.prunes[0], s).masks))
    for s in (0.5, 0.9, 0.95, 0.99):
        report = pruning.masks_report(jax.tree_util.tree_map(np.asarray, masks_at(s)), warn=False)
        for net, n in n_wide.items():
            assert report[net]["total"] == n and report[net]["kept"] == n - round(s * n) == num_kept(n, s), (s, net)


def test_the_narrow_control_of_a_wide_sparse_network_matches_its_kept_count():
    info = DatasetInfo("test", "Hopper-v5", 11, 3, 1.0, None, None, "none", "0" * 64, 1, 100)
    job = JobData(random_transitions(n=100, obs_dim=11, act_dim=3), info, "Hopper-v5")
    cfg = ExperimentConfig(dataset="d", workdir="/tmp/wd", agent=BCQ, prunes=(PruneConfig("random"),
                                                                             PruneConfig("narrow")),
                           sparsities=(0.75, 0.9), width_multiplier=2.0)
    programs = {p.name: p for p in plan_programs(cfg, job)}
    assert set(programs) == {"main", "narrow-0.75", "narrow-0.9"}
    assert programs["main"].config.width_multiplier == 2.0
    n_wide = kernel_counts(cfg.agent_config, 11, 3, 1.0)
    for s in (0.75, 0.9):
        p = programs[f"narrow-{s:g}"]
        assert p.config.width_multiplier == 1.0 and p.config.agent_config == p.config.agent  # dense, as sized
        record = p.narrow["record"]
        assert record["target"] == sum(num_kept(n, s) for n in n_wide.values())
        assert abs(record["kept"] - record["target"]) <= 0.05 * record["target"], record
        counts = kernel_counts(p.config.agent, 11, 3, 1.0)
        for net, r in record["networks"].items():
            assert r["full"] == n_wide[net] and r["kept"] == counts[net]


@pytest.mark.slow
def test_a_widened_job_reports_the_kept_counts_of_its_wide_networks(tmp_path):
    """TD3+BC with only its critic pruned, K = 2: the critic is twice as wide and keeps n_wide − round(s·n_wide);
    the actor keeps its width and every weight."""
    agent = make_config("td3bc", actor_hidden=(8, 8), critic_hidden=(6, 6))
    cfg = ExperimentConfig(dataset=_dataset(tmp_path), workdir=str(tmp_path / "wd"), agent=agent,
                           prunes=(PruneConfig("random", prune_networks=("critic",)),), seeds=(0,),
                           sparsities=(0.9,), steps=10, batch_size=16, eval_every=10, eval_episodes=0,
                           checkpoint_every=10, width_multiplier=2.0)
    lines = []
    summary = run_experiment(cfg, log=lines.append, logs=QUIET)
    wide = cfg.agent_config
    assert wide.critic_hidden == (12, 12) and wide.actor_hidden == (8, 8)
    n = kernel_counts(wide, 11, 3, 1.0)
    (run,) = summary.runs
    # the report counts both heads of the twin critic (Q2 takes Q1's mask)
    assert run.masks["critic"]["total"] == 2 * n["critic"]
    assert run.masks["critic"]["kept"] == 2 * num_kept(n["critic"], 0.9)
    assert run.masks["actor"]["kept"] == run.masks["actor"]["total"] == n["actor"]
    assert summary.config["width_multiplier"] == 2.0 and summary.config["agent"]["critic_hidden"] == [6, 6]
    assert any(l.startswith("kernel weights trained per run: ") and f"{run.kept:,}" in l for l in lines), lines
