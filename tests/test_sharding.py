"""Runs sharded over 4 forced CPU devices: every device holds its share, results match one device.

Each side runs in its own subprocess (the device count is fixed when JAX starts):
4 devices with ``runs_mesh()`` (6 runs padded to 8 with copies of the last run,
as ``experiment.py`` does), and 1 device without a mesh (the 6 runs alone).
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # every test starts processes with their own device counts

SCRIPT = textwrap.dedent(r"""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from sparse_orl.algos import make_algorithm
    from sparse_orl.algos import BCQConfig
    from sparse_orl.config import PruneConfig
    from sparse_orl.data.transitions import Transitions
    from sparse_orl.trainer.sharding import padded_num_runs, replicated, runs_mesh, runs_sharding
    from sparse_orl.trainer.runs import init_runs, make_train_chunk

    sharded, out = sys.argv[1] == "mesh", sys.argv[2]
    cfg = BCQConfig(actor_hidden=(8, 8), critic_hidden=(8, 8), vae_hidden=(8, 8))
    agent = make_algorithm(cfg, 3, 2, 1.0)
    k = jax.random.split(jax.random.PRNGKey(42), 5)
    n = 64
    data = Transitions(jax.random.normal(k[0], (n, 3)), jax.random.uniform(k[1], (n, 2), minval=-1, maxval=1),
                       jax.random.normal(k[2], (n,)), jax.random.normal(k[3], (n, 3)),
                       (jax.random.uniform(k[4], (n,)) < 0.1).astype(jnp.float32))
    seeds, sparsities = [0, 1, 2, 0, 1, 2], [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]
    prune = PruneConfig("random")
    info = {"devices": len(jax.devices())}
    if sharded:
        mesh = runs_mesh()
        r_pad = padded_num_runs(len(seeds), mesh)
        seeds, sparsities = seeds + seeds[-1:] * (r_pad - 6), sparsities + sparsities[-1:] * (r_pad - 6)
        data = jax.device_put(data, replicated(mesh))
        runs = init_runs(agent, prune, data, seeds, sparsities, mesh=mesh)
        chunk = make_train_chunk(agent, 16, 5, mesh=mesh)
    else:
        mesh, r_pad = None, 6
        runs = init_runs(agent, prune, data, seeds, sparsities)
        chunk = make_train_chunk(agent, 16, 5)
    for _ in range(2):  # two chunks: the donated, sharded states feed the next call
        runs, metrics = chunk(runs, data)
    jax.block_until_ready(runs)
    leaf = runs.agent.params["vae"]["e1"]["kernel"]
    info["r_pad"] = r_pad
    info["leaf_shape"] = list(leaf.shape)
    info["shards"] = sorted(
        [[s.device.id, s.index[0].start or 0, s.index[0].stop if s.index[0].stop is not None else leaf.shape[0],
          list(s.data.shape)] for s in leaf.addressable_shards])
    info["metric_shards"] = sorted(s.device.id for s in metrics["critic_loss"].addressable_shards)
    info["fully_replicated"] = bool(leaf.sharding.is_fully_replicated)
    flat = {jax.tree_util.keystr(p): np.asarray(x)[:6] for p, x in
            jax.tree_util.tree_leaves_with_path((runs.agent.params, runs.agent.target_params, runs.agent.masks))}
    flat.update({"metric" + k: np.asarray(v)[:6] for k, v in metrics.items()})
    flat["step"] = np.asarray(runs.agent.step)[:6]
    np.savez(out, **flat)
    print("INFO " + json.dumps(info))
""")


def _start(mode, out, devices):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    # both sides compile the same way (the suite's optimization level); only the device count differs
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0"
    if devices > 1:
        env["XLA_FLAGS"] += f" --xla_force_host_platform_device_count={devices}"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-c", SCRIPT, mode, out], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=root)


def _finish(p):
    try:
        stdout, stderr = p.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        p.kill()
        raise
    assert p.returncode == 0, stderr[-4000:]
    line = [l for l in stdout.splitlines() if l.startswith("INFO ")][-1]
    return json.loads(line[5:])


def test_runs_sharded_over_four_devices_match_one_device(tmp_path):
    sharded_npz, single_npz = str(tmp_path / "mesh.npz"), str(tmp_path / "single.npz")
    procs = [_start("mesh", sharded_npz, 4), _start("single", single_npz, 1)]  # in parallel
    info, ref = [_finish(p) for p in procs]
    assert info["devices"] == 4 and ref["devices"] == 1
    assert info["r_pad"] == 8 and info["leaf_shape"][0] == 8
    # every device holds its own quarter of the runs axis
    assert not info["fully_replicated"]
    assert [s[0] for s in info["shards"]] == [0, 1, 2, 3]
    assert sorted((s[1], s[2]) for s in info["shards"]) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert all(s[3][0] == 2 for s in info["shards"])
    assert info["metric_shards"] == [0, 1, 2, 3]
    a, b = np.load(sharded_npz), np.load(single_npz)
    assert set(a.files) == set(b.files)
    assert np.array_equal(a["step"], np.full(6, 10))
    for k in a.files:
        assert np.all(np.isfinite(a[k])), k
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # the pruned runs really are pruned, and identically on both sides
    mask_keys = [k for k in a.files if k.startswith("[2]") and k.endswith("['kernel']")]
    assert mask_keys and all(np.array_equal(a[k], b[k]) for k in mask_keys)
    assert any(a[k][3:].mean() < 0.9 for k in mask_keys)


IQL_SCRIPT = textwrap.dedent(r"""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from sparse_orl.algos import IQLConfig, make_algorithm
    from sparse_orl.config import PruneConfig
    from sparse_orl.data.transitions import Transitions
    from sparse_orl.trainer.sharding import replicated, runs_mesh
    from sparse_orl.trainer.runs import init_runs, make_train_chunk

    agent = make_algorithm(IQLConfig(actor_hidden=(8, 8), critic_hidden=(8, 8), value_hidden=(8, 8)), 3, 2, 1.0)
    k = jax.random.split(jax.random.PRNGKey(1), 5)
    n = 64
    data = Transitions(jax.random.normal(k[0], (n, 3)), jax.random.uniform(k[1], (n, 2), minval=-1, maxval=1),
                       jax.random.normal(k[2], (n,)), jax.random.normal(k[3], (n, 3)), jnp.zeros((n,)))
    mesh = runs_mesh()
    data = jax.device_put(data, replicated(mesh))
    runs = init_runs(agent, PruneConfig("snip"), data, [0, 1], [0.5, 0.5], mesh=mesh)
    runs, _ = make_train_chunk(agent, 16, 5, mesh=mesh)(runs, data)
    leaf = np.asarray(runs.agent.params["value"]["net"]["l1"]["kernel"])
    print("OK " + json.dumps({"devices": len(jax.devices()), "sum": float(np.abs(leaf).sum())}))
""")


def test_orthogonal_init_and_training_over_two_cpu_devices_finish():
    # IQL's orthogonal init once deadlocked a program split over CPU devices (a host-callback QR
    # inside a cross-device all-reduce); every device now inits its own runs with a pure-JAX QR
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0 --xla_force_host_platform_device_count=2"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", IQL_SCRIPT], capture_output=True, text=True, env=env, cwd=root,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads([l for l in out.stdout.splitlines() if l.startswith("OK ")][-1][3:])
    assert info["devices"] == 2 and np.isfinite(info["sum"]) and info["sum"] > 0
