"""The compact training format (``--sparse_format=compact``) against the masked one, its reference.

Same masks, same keys, same steps: every algorithm's losses and kept weights agree up to float
reassociation, pruned positions are absent from the compact state (params, Polyak targets, Adam's
moments), padded runs (global SNIP: per-layer counts differ between runs) train like unpadded ones,
and a compact job resumes after a kill, writes dense-shaped outputs and exports a policy that the
numpy deploy loader runs.
"""
import os

import jax
import numpy as np
import pytest

from conftest import random_transitions, tiny_algorithm, write_random_d4rl
from sparse_orl import kernels
from sparse_orl.algos import make_config
from sparse_orl.algos.compact_params import is_compact
from sparse_orl.config import ExperimentConfig, LogConfig, PruneConfig
from sparse_orl.trainer import compact
from sparse_orl.trainer.runs import init_runs, make_train_chunk

pytestmark = pytest.mark.skipif(not kernels.available(), reason="the compact kernels are not built")

WIDE = dict(actor_hidden=(16, 16), critic_hidden=(16, 12), vae_hidden=(20, 16), value_hidden=(16, 12))
ALGOS = {
    "bc_vae_only": ("bc", dict(vae_only=True)),
    "bc": ("bc", {}),
    "bcq": ("bcq", {}),
    "td3bc": ("td3bc", {}),
    "iql": ("iql", {}),
}
STEPS, BATCH = 200, 32
QUIET = LogConfig(report=False, tensorboard=False)


def _fields(algo, extra):
    names = {"bc": ("actor_hidden", "critic_hidden", "vae_hidden"), "bcq": ("actor_hidden", "critic_hidden", "vae_hidden"),
             "td3bc": ("actor_hidden", "critic_hidden"), "iql": ("actor_hidden", "critic_hidden", "value_hidden")}[algo]
    return {**{k: WIDE[k] for k in names}, **extra}


def _both_formats(name):
    """(algorithm, masked runs after STEPS, their metrics, compact runs after STEPS, their metrics, plan)."""
    algo_name, extra = ALGOS[name]
    agent = tiny_algorithm(algo_name, **_fields(algo_name, extra))
    data = random_transitions(n=300)
    # global SNIP at two levels: every layer's kept count differs between the runs, so the compact
    # kernels are padded to the largest count with inert entries
    runs = init_runs(agent, PruneConfig("snip", score_batch=64), data, [0, 1, 2], [0.7, 0.9, 0.9])
    host = jax.tree_util.tree_map(np.asarray, runs.agent)
    plan = compact.plan_layers(host.params, host.masks, "compact", BATCH)
    assert plan and all(v["compact"] for v in plan.values())
    # the train chunk donates its input: the compact runs get their own copy of the shared leaves (keys)
    compact_runs = jax.tree_util.tree_map(lambda x: x.copy(),
                                          runs.replace(agent=compact.to_compact(agent, runs.agent, plan)))
    chunk = make_train_chunk(agent, BATCH, STEPS)
    masked_out, m_masked = chunk(runs, data)
    compact_out, m_compact = chunk(compact_runs, data)
    return agent, masked_out, m_masked, compact_out, m_compact, plan


def _network_leaves(state, network, rest):
    """Leaves of ``state`` (params, targets, optimizer state) under ``network`` whose path ends in ``rest``."""
    tail = "".join(f"['{k}']" for k in rest)
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        text = jax.tree_util.keystr(path)
        if f"['{network}']" in text and tail in text:
            out.append((text, leaf))
    return out


@pytest.mark.slow  # five algorithms x two formats, 200 steps each, compiled
@pytest.mark.parametrize("name", sorted(ALGOS))
def test_compact_trains_like_masked_and_holds_only_kept_values(name):
    agent, a, ma, b, mb, plan = _both_formats(name)
    assert int(b.agent.step[0]) == STEPS
    # the same losses at every step (float reassociation only)
    assert set(ma) == set(mb)
    for k in ma:
        np.testing.assert_allclose(np.asarray(mb[k]), np.asarray(ma[k]), rtol=2e-4, atol=2e-5, err_msg=k)
    # the same kept weights; pruned ones exactly 0 in the dense view of the compact state
    params_b, masks_b = compact.dense_view(b.agent)
    jax.tree_util.tree_map(lambda m, n: np.testing.assert_array_equal(np.asarray(m), np.asarray(n)),
                           a.agent.masks, masks_b)
    for (path, x), y, m in zip(jax.tree_util.tree_flatten_with_path(a.agent.params)[0],
                               jax.tree_util.tree_leaves(params_b), jax.tree_util.tree_leaves(masks_b)):
        x, y, m = np.asarray(x), np.asarray(y), np.asarray(m)
        assert np.all(y[m == 0] == 0.0), jax.tree_util.keystr(path)
        np.testing.assert_allclose(y, x, rtol=2e-4, atol=2e-5, err_msg=jax.tree_util.keystr(path))
    # pruned positions are absent: every leaf of a compact kernel's params, targets and Adam moments has
    # k_max entries per run (or its fixed index), none the dense (in, out) kernel
    runs = b.agent.step.shape[0]
    dense_size, compact_size = 0, 0
    for key, entry in plan.items():
        network, *rest = key.split("/")
        n_in, n_out = entry["shape"]
        leaves = _network_leaves(b.agent, network, rest)
        assert leaves, key
        for text, leaf in leaves:
            assert leaf.shape[1:] != (n_in, n_out), f"{key}: {text} holds the dense kernel"
            assert leaf.size <= runs * max(entry["k_max"], n_in + 1, n_out + 1), f"{key}: {text} {leaf.shape}"
        kernel = b.agent.params[network]
        for k in rest:
            kernel = kernel[k]
        assert is_compact(kernel) and kernel.values.shape == (runs, entry["k_max"]), key
    for leaf in jax.tree_util.tree_leaves(a.agent):
        dense_size += np.asarray(leaf).size
    for leaf in jax.tree_util.tree_leaves(b.agent):
        compact_size += np.asarray(leaf).size
    assert compact_size < dense_size
    # the padding stays inert: its values are exact zeros after training
    padded = False
    for key, entry in plan.items():
        network, *rest = key.split("/")
        kernel = b.agent.params[network]
        for k in rest:
            kernel = kernel[k]
        kept = np.asarray(kernel.index.row_ptr)[:, -1]
        values = np.asarray(kernel.values)
        for r in range(runs):
            assert np.all(values[r, kept[r]:] == 0.0), (key, r)
        padded |= bool(kept.min() < entry["k_max"])
    assert padded, "no run was padded: the levels should give different kept counts"


def _job(tmp_path, fmt, workdir):
    data = os.path.join(str(tmp_path), "hopper_compact.hdf5")
    if not os.path.exists(data):
        write_random_d4rl(data, n=400)
    return ExperimentConfig(dataset=data, workdir=str(tmp_path / workdir),
                            agent=make_config("td3bc", actor_hidden=(16, 16), critic_hidden=(16, 16)),
                            prunes=(PruneConfig("erk_random"), PruneConfig("snip", score_batch=64)), seeds=(0, 1),
                            sparsities=(0.9,), steps=60, batch_size=16, eval_every=20, eval_episodes=0,
                            checkpoint_every=20, sparse_format=fmt)


@pytest.mark.slow
def test_a_compact_job_resumes_after_a_kill_and_writes_what_a_masked_job_writes(tmp_path):
    from conftest import final_runs, metrics_rows
    from sparse_orl import deploy
    from sparse_orl.api import Result
    from sparse_orl.job.run import run_experiment
    from sparse_orl.store.atomic import read_json

    quiet = lambda _m: None  # noqa: E731
    run_experiment(_job(tmp_path, "masked", "masked"), log=quiet, logs=QUIET)
    straight = _job(tmp_path, "compact", "straight")
    lines = []
    run_experiment(straight, log=lines.append, logs=QUIET)
    assert any(line.startswith("compact layers: ") for line in lines), lines
    killed = _job(tmp_path, "compact", "killed")
    assert run_experiment(killed, log=quiet, stop_at=50, logs=QUIET).complete is False  # last checkpoint at 40
    lines = []
    assert run_experiment(killed, log=lines.append, logs=QUIET).complete
    assert "resumed from checkpoint at step 40" in " ".join(lines)
    assert read_json(os.path.join(killed.workdir, "sparse_format.json"), "format")["format"] == "compact"
    # the resumed job is the straight one, bit for bit; both equal the masked job up to rounding
    assert metrics_rows(tmp_path / "straight") == metrics_rows(tmp_path / "killed")
    _, masked_runs = final_runs(tmp_path / "masked")
    _, straight_runs = final_runs(tmp_path / "straight")
    _, killed_runs = final_runs(tmp_path / "killed")
    for m, s, k in zip(masked_runs, straight_runs, killed_runs):
        jax.tree_util.tree_map(np.testing.assert_array_equal, s["params"], k["params"])
        jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5),
                               m["params"], s["params"])
        # dense-shaped kernels with zeros at pruned positions, as the masked format writes them
        jax.tree_util.tree_map(lambda x, y: (x.shape == y.shape) or pytest.fail("shape"), m["params"], s["params"])
        jax.tree_util.tree_map(lambda p, mask: np.testing.assert_array_equal(p[mask == 0], 0.0),
                               s["params"]["actor"], s["masks"]["actor"])
    # export, then deploy without the library's training code: acts as the compact-trained run does
    from sparse_orl.algos.registry import make_algorithm

    cfg, runs = final_runs(tmp_path / "killed")
    run = next(r for r in runs if r["pruner"] == "erk_random" and r["seed"] == 1)
    out = str(tmp_path / "policy.sorl")
    Result.load(str(tmp_path / "killed")).export(out, pruner="erk_random", seed=1)
    agent = make_algorithm(make_config("td3bc", actor_hidden=(16, 16), critic_hidden=(16, 16)), cfg["obs_dim"],
                           cfg["act_dim"], cfg["max_action"])
    obs = np.random.default_rng(0).normal(size=(4, cfg["obs_dim"])).astype(np.float32)
    want = np.asarray(agent.act(run["params"], run["obs_mean"], run["obs_std"], obs, None))
    for sparse in (False, True):
        np.testing.assert_allclose(deploy.Policy.load(out, sparse=sparse).act(obs), want, rtol=1e-5, atol=1e-5)


def test_auto_measures_only_layers_of_1024_weights_or_more_and_says_which(monkeypatch):
    measured = []

    def fake_measure(batch, n_in, n_out, k_max):  # compact "faster" for every layer it is asked about
        measured.append((n_in, n_out))
        return 2.0, 1.0

    monkeypatch.setattr(compact, "measure", fake_measure)
    rng = np.random.default_rng(0)
    shapes = {"l1": (17, 64), "l2": (64, 64), "l3": (64, 6)}  # 1,088 / 4,096 / 384 weights
    masks = {"actor": {k: {"kernel": (rng.uniform(size=(2, *v)) < 0.1).astype(np.float32)} for k, v in shapes.items()}}
    params = jax.tree_util.tree_map(lambda m: np.ones_like(m), masks)
    plan = compact.plan_layers(params, masks, "auto", 256)
    assert sorted(measured) == [(17, 64), (64, 64)]
    assert [k for k, v in plan.items() if v["compact"]] == ["actor/l1/kernel", "actor/l2/kernel"]
    assert plan["actor/l3/kernel"] == {"shape": [64, 6], "k_max": plan["actor/l3/kernel"]["k_max"], "compact": False,
                                       "small": True}
    text = compact.describe(plan)
    assert text.startswith("compact layers: actor/l1 (17x64, ") and text.endswith(
        "; masked (under 1,024 weights, not measured): actor/l3"), text
    assert all(v["compact"] for v in compact.plan_layers(params, masks, "compact", 256).values())


def test_resuming_in_the_other_format_is_refused_in_one_line(tmp_path):
    from sparse_orl.job.run import run_experiment

    run_experiment(_job(tmp_path, "compact", "wd"), log=lambda _m: None, stop_at=20, logs=QUIET)
    with pytest.raises(ValueError) as e:
        run_experiment(_job(tmp_path, "masked", "wd"), log=lambda _m: None, logs=QUIET)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--sparse_format=masked: ") and "compact format" in msg, msg
