"""Compact export: bit-exact round trips, sizes vs dense / torch COO, corrupt files, deploy."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from sparse_orl import deploy, export
from sparse_orl.store.atomic import flatten, unflatten

HC_OBS, HC_ACT, HC_LAT = 17, 6, 12  # HalfCheetah


def _layers(net, obs=HC_OBS, act=HC_ACT, lat=HC_LAT, h=(400, 300), vh=(750, 750)):
    """{path: (fan_in, fan_out)} of one network, named like the flax modules."""
    if net == "actor":
        return {"net/l1": (obs + act, h[0]), "net/l2": h, "net/l3": (h[1], act)}
    if net == "critic":
        return {f"{q}/net/{k}": v for q in ("q1", "q2")
                for k, v in {"l1": (obs + act, h[0]), "l2": h, "l3": (h[1], 1)}.items()}
    return {"e1": (obs + act, vh[0]), "e2": vh, "mean": (vh[1], lat), "log_std": (vh[1], lat),
            "d1": (obs + lat, vh[0]), "d2": vh, "d3": (vh[1], act)}


def _network(layers, sparsity, rng):
    """U(±1/√fan_in) params and a global mask with exactly n - round(s·n) kept weights, masked."""
    flat_p, flat_m = {}, {}
    n = sum(i * o for i, o in layers.values())
    keep = np.zeros(n, bool)
    keep[rng.choice(n, n - round(sparsity * n), replace=False)] = True
    off = 0
    for name, (i, o) in layers.items():
        b = 1 / np.sqrt(i)
        m = keep[off:off + i * o].reshape(i, o).astype(np.float32)
        off += i * o
        flat_p[name + "/kernel"] = rng.uniform(-b, b, (i, o)).astype(np.float32) * m  # -0.0 where pruned
        flat_m[name + "/kernel"] = m
        flat_p[name + "/bias"] = rng.uniform(-b, b, o).astype(np.float32)
        flat_m[name + "/bias"] = np.ones(o, np.float32)
    return unflatten(flat_p), unflatten(flat_m)


def _assert_bit_exact(params, masks, params2, masks2):
    fp, fm = flatten(params), flatten(masks)
    fp2, fm2 = flatten(params2), flatten(masks2)
    assert set(fp) == set(fp2)
    for k in fp:
        want = np.where(fm[k] != 0, fp[k], np.float32(0))  # pruned -0.0 comes back as +0.0
        assert fp2[k].dtype == np.float32 and fm2[k].dtype == np.float32
        assert np.array_equal(fp2[k].view(np.uint32), want.view(np.uint32)), k
        assert np.array_equal(fm2[k], fm[k]), k


# ---- round trips ----------------------------------------------------------------------
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.95, 0.99])
@pytest.mark.parametrize("codecs,compress", [(("bmp", "g8"), True), (("bmp",), False), (("g8",), False)])
def test_round_trip_bit_exact(tmp_path, sparsity, codecs, compress):
    rng = np.random.default_rng(int(sparsity * 100))
    params, masks = {}, {}
    for net in ("actor", "critic", "vae"):
        params[net], masks[net] = _network(_layers(net, 5, 3, 6, (48, 40), (64, 64)), sparsity, rng)
    # a kept weight that is exactly 0.0 stays kept: the mask comes from the indices
    k = params["actor"]["net"]["l2"]["kernel"]
    masks["actor"]["net"]["l2"]["kernel"][0, 0] = 1.0
    k[0, 0] = 0.0
    meta = {"obs_mean": rng.normal(size=5).astype(np.float32),
            "obs_std": np.float32(1) + rng.uniform(size=5).astype(np.float32),
            "config": {"algo": "bcq", "hidden": (48, 40)}, "note": "x"}
    path = str(tmp_path / "net.soc")
    nbytes = export.save_compact(path, params, masks, meta, index_codecs=codecs, compress=compress)
    assert nbytes == os.path.getsize(path)
    assert not [f for f in os.listdir(tmp_path) if f != "net.soc"]  # temp file renamed away
    p2, m2, meta2 = export.load_compact(path)
    _assert_bit_exact(params, masks, p2, m2)
    assert np.array_equal(meta2["obs_mean"], meta["obs_mean"]) and meta2["obs_std"].dtype == np.float32
    assert meta2["config"] == {"algo": "bcq", "hidden": [48, 40]} and meta2["note"] == "x"
    # the standalone loader decodes the same file identically
    fp, fm, meta3 = deploy.read_compact(path)
    _assert_bit_exact(params, masks, unflatten(fp), unflatten(fm))
    assert np.array_equal(meta3["obs_std"], meta["obs_std"])


def test_gap_escapes_and_edge_tensors(tmp_path):
    """Gaps of 254, 255, 510 and 70,000 pruned positions; an all-pruned kernel; masks=None."""
    k = np.zeros((300, 300), np.float32)
    pos = np.array([0, 255, 511, 1022, 71023, 89999])  # gaps 0, 254, 255, 510, 70000, 18975
    k.reshape(-1)[pos] = np.arange(1, 7, dtype=np.float32)
    m = (k != 0).astype(np.float32)
    params = {"a": {"kernel": k, "bias": np.ones(3, np.float32)}, "b": {"kernel": np.zeros((4, 5), np.float32)}}
    masks = {"a": {"kernel": m, "bias": np.ones(3, np.float32)}, "b": {"kernel": np.zeros((4, 5), np.float32)}}
    for compress in (False, True):
        path = str(tmp_path / f"edge{compress}.soc")
        export.save_compact(path, params, masks, index_codecs=("g8",), compress=compress)
        _assert_bit_exact(params, masks, *export.load_compact(path)[:2])
    dense = {"l": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3) - 2, "bias": np.zeros(3, np.float32)}}
    export.save_compact(str(tmp_path / "d.soc"), dense, None)
    p2, m2, meta = export.load_compact(str(tmp_path / "d.soc"))
    assert np.array_equal(p2["l"]["kernel"], dense["l"]["kernel"]) and m2["l"]["kernel"].min() == 1 and meta == {}


def test_unmasked_params_are_refused(tmp_path):
    p = {"l": {"kernel": np.ones((3, 3), np.float32)}}
    m = {"l": {"kernel": np.eye(3, dtype=np.float32)}}
    with pytest.raises(ValueError, match="nonzero"):
        export.save_compact(str(tmp_path / "x.soc"), p, m)


# ---- sizes ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def halfcheetah_95():
    rng = np.random.default_rng(0)
    params, masks = {}, {}
    for net in ("actor", "critic", "vae"):
        params[net], masks[net] = _network(_layers(net), 0.95, rng)
    return params, masks


def test_halfcheetah_95_ratio_at_least_12x_and_vae_round_trip(tmp_path, halfcheetah_95):
    params, masks = halfcheetah_95
    table = export.size_table(params, masks)
    assert table["actor"]["dense"] == 4 * 131_706
    assert table["critic"]["dense"] == 4 * 260_402
    assert table["vae"]["dense"] == 4 * 1_189_530
    for net, row in table.items():
        assert abs(row["sparsity"] - 0.95) < 1e-4
        assert row["compact_ratio"] >= 12.0, (net, row)
        assert row["compact"] < row["gap8"] < row["bitmap"] < row["coo"]
        assert row["coo_ratio"] < 4.0
    path = str(tmp_path / "vae.soc")
    nbytes = export.save_compact(path, {"vae": params["vae"]}, {"vae": masks["vae"]})
    assert nbytes == table["vae"]["compact"]
    _assert_bit_exact({"vae": params["vae"]}, {"vae": masks["vae"]}, *export.load_compact(path)[:2])


def test_torch_coo_accounting_reproduces_paper_table1(halfcheetah_95):
    params, masks = halfcheetah_95
    paper_mb = {"actor": 0.14099, "critic": 0.2768, "vae": 1.2122}
    for net, mb in paper_mb.items():
        got = export.torch_coo_nbytes(params[net], masks[net]) / 1e6
        assert abs(got / mb - 1) < 0.03, (net, got, mb)
    # dense (mask all ones): 4 B per parameter vs the paper's 0.5287 / 1.04492 / 4.7621 MB
    for net, mb in {"actor": 0.5287, "critic": 1.04492, "vae": 4.7621}.items():
        assert abs(export.dense_nbytes(params[net]) / 1e6 / mb - 1) < 0.01


def test_lossy_float16_bfloat16(tmp_path):
    rng = np.random.default_rng(3)
    params, masks = _network(_layers("actor", 5, 3, 6, (48, 40)), 0.9, rng)
    lossless = export.save_compact(str(tmp_path / "f32.soc"), params, masks)
    for dtype, rtol in (("float16", 2.0 ** -11), ("bfloat16", 2.0 ** -8)):
        path = str(tmp_path / f"{dtype}.soc")
        assert export.save_compact(path, params, masks, value_dtype=dtype) < 0.75 * lossless
        p2, m2, _ = export.load_compact(path)
        for k, v in flatten(params).items():
            got = flatten(p2)[k]
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, v, rtol=rtol, atol=1e-7)
            assert np.array_equal(flatten(m2)[k], flatten(masks)[k])
    with pytest.raises(ValueError, match="value_dtype"):
        export.save_compact(str(tmp_path / "x.soc"), params, masks, value_dtype="int8")


# ---- corrupt files -------------------------------------------------------------------------
def test_corrupt_and_truncated_files_raise_naming_the_file(tmp_path):
    rng = np.random.default_rng(1)
    params, masks = _network(_layers("actor", 5, 3, 6, (32, 32)), 0.9, rng)
    good = str(tmp_path / "good.soc")
    export.save_compact(good, params, masks, {"obs_mean": np.zeros(5, np.float32)})
    data = open(good, "rb").read()
    bad = {
        "truncated": data[: len(data) // 2],
        "preamble_only": data[:7],
        "empty": b"",
        "flipped_payload": data[:-10] + bytes([data[-10] ^ 1]) + data[-9:],
        "flipped_header": data[:15] + bytes([data[15] ^ 0x40]) + data[16:],
        "bad_magic": b"PK\x03\x04" + data[4:],
        "bad_version": data[:4] + b"\x07" + data[5:],
        "appended": data + b"\0",
    }
    for name, blob in bad.items():
        path = str(tmp_path / f"{name}.soc")
        with open(path, "wb") as f:
            f.write(blob)
        for loader in (export.load_compact, deploy.read_compact):
            with pytest.raises(ValueError, match=name):
                loader(path)


# ---- deployment: the standalone policy vs the flax modules ------------------------------------
def _agent_file(tmp_path, algo, sparsity=0.5, normalize=True, obs_dim=5, act_dim=3):
    """A small agent, masked params of its shapes (numpy, no flax init), and its compact file."""
    from sparse_orl.algos import BCConfig, BCQConfig, make_algorithm

    if algo == "bc":
        cfg = BCConfig(vae_only=True, vae_hidden=(16, 16), normalize_obs=normalize)
    else:
        cfg = BCQConfig(actor_hidden=(16, 12), critic_hidden=(16, 12), vae_hidden=(16, 16),
                          num_act_samples=4, normalize_obs=normalize)
    agent = make_algorithm(cfg, obs_dim, act_dim, 1.0)
    rng = np.random.default_rng(0)
    nets = ["vae"] if algo == "bc" else ["actor", "critic", "vae"]
    params, masks = {}, {}
    for net in nets:
        params[net], masks[net] = _network(
            _layers(net, obs_dim, act_dim, agent.latent_dim, cfg.actor_hidden, cfg.vae_hidden), sparsity, rng)
    mean = rng.normal(size=obs_dim).astype(np.float32)
    std = rng.uniform(0.5, 2, size=obs_dim).astype(np.float32)
    meta = {"config": cfg.to_dict() | {"obs_dim": obs_dim, "act_dim": act_dim, "max_action": 1.0,
                                       "env_id": "Test-v0"}, "acting": agent.acting_program(),
            "obs_mean": mean, "obs_std": std}
    path = str(tmp_path / f"{algo}.soc")
    export.save_compact(path, params, masks, meta)
    return agent, params, mean, std, path


def _cat(a, b):
    return np.concatenate([np.asarray(a, np.float32), np.asarray(b, np.float32)], -1)


def _decode(pol, s, z):  # G(s, z) from the policy's own decoder MLP
    return pol.max_action * np.tanh(np.asarray(pol.network("vae", "d")(_cat(s, z))))


def _perturb(pol, s, a):  # BCQ's ξ(s, a)
    d = np.asarray(pol.network("actor/net", "l")(_cat(s, a)))
    return np.clip(a + pol.config["phi"] * pol.max_action * np.tanh(d), -pol.max_action, pol.max_action)


def _q1(pol, s, a):
    return np.asarray(pol.network("critic/q1/net", "l")(_cat(s, a)))[..., 0]


@pytest.mark.parametrize("algo", ["bc", "bcq"])
def test_policy_matches_flax_agent(tmp_path, algo):
    agent, params, mean, std, path = _agent_file(tmp_path, algo)
    obs = np.random.default_rng(5).normal(size=(7, 5)).astype(np.float32) * 2
    policies = [deploy.Policy.load(path, sparse=False), deploy.Policy.load(path, backend="jax")]
    policies += [deploy.Policy.load(path, sparse=True, kernel=k) for k in deploy.KERNELS]
    s = agent.normalize(mean, std, obs)
    z = np.random.default_rng(6).uniform(-0.4, 0.4, size=(7, 6)).astype(np.float32)
    a = np.random.default_rng(7).uniform(-1, 1, size=(7, 3)).astype(np.float32)
    ref_dec = np.asarray(jax.jit(agent.decode)(params["vae"], s, z))
    key = jax.random.PRNGKey(11)
    ref_act = np.asarray(jax.jit(agent.act)(params, mean, std, obs, key))
    for pol in policies:
        assert pol.algo == algo and pol.latent_dim == 6
        np.testing.assert_allclose(pol.normalize(obs), s, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(_decode(pol, s, z)), ref_dec, rtol=1e-5, atol=1e-5)
        if algo == "bcq":
            np.testing.assert_allclose(np.asarray(_perturb(pol, s, a)),
                                       agent.actor.apply({"params": params["actor"]}, s, a), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(np.asarray(_q1(pol, s, a)),
                                       agent.critic.apply({"params": params["critic"]["q1"]}, s, a),
                                       rtol=1e-5, atol=1e-5)
        # the same N(0, I) draws the agent clips: act() is the agent's act end to end
        z_raw = np.asarray(jax.random.normal(key, pol.latent_shape((7,))))
        np.testing.assert_allclose(pol.act(obs, z=z_raw), ref_act, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("algo", ["bc", "bcq"])
def test_policy_act_sampling_shapes_and_clipping(tmp_path, algo):
    _, _, _, _, path = _agent_file(tmp_path, algo, normalize=False)
    pol = deploy.Policy.load(path)
    one = pol.act(np.zeros(5, np.float32), rng=0)
    assert one.shape == (3,) and one.dtype == np.float32
    batch = pol.act(np.ones((4, 5)), rng=np.random.default_rng(1))
    assert batch.shape == (4, 3) and np.all(np.abs(batch) <= 1.0)
    np.testing.assert_array_equal(pol.act(np.ones((4, 5)), rng=1), pol.act(np.ones((4, 5)), rng=1))
    clip = 0.25 if algo == "bc" else 0.5
    shape = pol.latent_shape((4,))
    assert shape == ((4, 6) if algo == "bc" else (4, 4, 6))
    # latents beyond the clip act like the clip itself
    big = np.full(shape, 9.0, np.float32)
    np.testing.assert_array_equal(pol.act(np.ones((4, 5)), z=big), pol.act(np.ones((4, 5)), z=big * 0 + clip))
    with pytest.raises(ValueError, match="obs"):
        pol.act(np.zeros(4))


def test_export_run_and_standalone_deploy(tmp_path):
    from sparse_orl.store.final import save_final

    agent, params, mean, std, path = _agent_file(tmp_path, "bcq")
    masks = export.load_compact(path)[1]
    stack = lambda t: jax.tree_util.tree_map(lambda x: np.stack([x, x]), t)
    cfg = agent.config.to_dict() | {"obs_dim": 5, "act_dim": 3, "max_action": 1.0, "env_id": "Test-v0"}
    workdir = str(tmp_path / "wd")
    save_final(workdir, [{"seed": s, "sparsity": 0.5, "pruner": "random"} for s in (0, 1)], stack(params),
               stack(masks), np.stack([mean, mean]), np.stack([std, std]), cfg)
    out = str(tmp_path / "policy.soc")
    nbytes = export.export_run(workdir, 1, out)
    assert nbytes == os.path.getsize(out)
    p2, m2, meta = export.load_compact(out)
    # what acting reads: the actor, Q1, and the VAE's decoder (not its encoder)
    assert set(p2) == {"actor", "critic", "vae"} and set(p2["critic"]) == {"q1"}
    assert set(p2["vae"]) == {"d1", "d2", "d3"}
    decoder = lambda t: {k: v for k, v in t.items() if k.startswith("d")}  # noqa: E731
    _assert_bit_exact({"actor": params["actor"], "q1": params["critic"]["q1"], "vae": decoder(params["vae"])},
                      {"actor": masks["actor"], "q1": masks["critic"]["q1"], "vae": decoder(masks["vae"])},
                      {"actor": p2["actor"], "q1": p2["critic"]["q1"], "vae": p2["vae"]},
                      {"actor": m2["actor"], "q1": m2["critic"]["q1"], "vae": m2["vae"]})
    assert meta["config"]["env_id"] == "Test-v0" and meta["run"] == {"seed": 1, "sparsity": 0.5, "pruner": "random"}
    assert np.array_equal(meta["obs_mean"], mean)
    # the same run chosen by its seed instead of its index: the same bytes
    by_seed = str(tmp_path / "by_seed.soc")
    assert export.export_run(workdir, out_path=by_seed, pruner="random", seed=1) == nbytes
    assert open(by_seed, "rb").read() == open(out, "rb").read()
    with pytest.raises(ValueError, match=r"2 runs of .* match pruner=None sparsity=0.5 seed=None; its runs are "
                                         r"0: random 0.5 seed 0; 1: random 0.5 seed 1"):
        export.export_run(workdir, out_path=by_seed, sparsity=0.5)
    # the whole VAE and both Q-networks on request: a larger file
    full = str(tmp_path / "full.soc")
    assert export.export_run(workdir, 0, full, include_q2=True, acting_only=False) > nbytes
    p3, _, _ = export.load_compact(full)
    assert set(p3["vae"]) == set(params["vae"]) and set(p3["critic"]) == {"q1", "q2"}
    small = out
    # deploy.py copied alone next to the file, run without sparse_orl, flax or jax
    deploy_src = os.path.join(os.path.dirname(deploy.__file__), "deploy.py")
    code = (
        "import importlib.util, sys, numpy as np\n"
        f"spec = importlib.util.spec_from_file_location('standalone_deploy', {deploy_src!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        f"pol = mod.Policy.load({small!r}, sparse=True)\n"
        "print(pol.act(np.zeros(5), rng=0).shape)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'sparse_orl')]\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=str(tmp_path), env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "(3,)"


# ---- the sparse-aware path: dead-unit compaction and kernel choice ------------------------------
def _dense_mlp_ref(ws, bs, x):
    for w, b in zip(ws[:-1], bs[:-1]):
        x = np.maximum(x @ w + b, 0)
    return x @ ws[-1] + bs[-1]


def _random_mlp(rng, dims, density):
    ms = [(rng.random((i, o)) < density).astype(np.float32) for i, o in zip(dims[:-1], dims[1:])]
    ws = [rng.uniform(-1, 1, m.shape).astype(np.float32) * m for m in ms]
    bs = [rng.uniform(-1, 1, o).astype(np.float32) for o in dims[1:]]
    return ws, ms, bs


def _assert_no_dead_units(ms):
    for i in range(len(ms) - 1):
        assert ms[i].any(0).all() and ms[i + 1].any(1).all(), i  # every hidden unit: an input and an output


def test_compact_mlp_hand_built_fold_and_fixed_point():
    """Units without inputs fold into the next bias; chains of dead units need several sweeps."""
    dims = [4, 5, 5, 2]
    ms = [np.zeros((i, o), np.float32) for i, o in zip(dims[:-1], dims[1:])]
    ms[0][:, 0] = 1  # h1[0]: a normal unit
    ms[0][1, 4] = 1  # h1[4]: its only output goes to h2[4], which has no output -> h1[4] dies on sweep 2
    ms[1][0, 0] = ms[1][2, 1] = ms[1][3, 2] = ms[1][4, 4] = 1  # h1[1] has no input nor output
    # h1[2], h1[3]: no input -> constants relu(b) (b = +0.5, -0.5) folded into h2's bias; h2[1], h2[2]
    # then have no input either -> folded into the output bias on the next sweep
    ms[2][0, 0] = ms[2][1, 1] = ms[2][2, 0] = ms[2][3, 1] = 1  # h2[3]: no input, h2[4]: no output
    rng = np.random.default_rng(0)
    ws = [rng.uniform(-1, 1, m.shape).astype(np.float32) * m for m in ms]
    bs = [np.array([0.1, 0.2, 0.5, -0.5, 0.3], np.float32), rng.uniform(-1, 1, 5).astype(np.float32),
          rng.uniform(-1, 1, 2).astype(np.float32)]
    inputs, ws2, ms2, bs2 = deploy.compact_mlp(ws, ms, bs)
    assert [w.shape for w in ws2] == [(4, 1), (1, 1), (1, 2)]  # h1 = {0}, h2 = {0}
    assert inputs is None  # every input feeds h1[0]
    _assert_no_dead_units(ms2)
    x = rng.normal(size=(9, 4)).astype(np.float32)
    np.testing.assert_allclose(_dense_mlp_ref(ws2, bs2, x), _dense_mlp_ref(ws, bs, x), rtol=1e-6, atol=1e-6)
    # a layer with nothing kept: the output is a constant
    ms[1][:] = 0
    ws[1][:] = 0
    inputs, ws3, ms3, bs3 = deploy.compact_mlp(ws, ms, bs)
    assert [w.shape for w in ws3] == [(0, 0), (0, 0), (0, 2)] and len(inputs) == 0
    np.testing.assert_allclose(_dense_mlp_ref(ws3, bs3, x[:, inputs]), _dense_mlp_ref(ws, bs, x), atol=1e-6)


@pytest.mark.parametrize("density", [0.02, 0.05, 0.1, 0.3, 1.0])
def test_compact_mlp_random_exact_and_matches_unit_report(density):
    from sparse_orl.report.diagnostics import unit_report

    rng = np.random.default_rng(int(density * 100))
    for trial in range(5):
        dims = [int(rng.integers(3, 30)), 60, 50, 40, int(rng.integers(1, 7))]
        ws, ms, bs = _random_mlp(rng, dims, density)
        inputs, ws2, ms2, bs2 = deploy.compact_mlp(ws, ms, bs)
        _assert_no_dead_units(ms2)
        assert ws2[-1].shape[1] == dims[-1]
        x = rng.normal(size=(16, dims[0])).astype(np.float32)
        xi = x if inputs is None else x[:, inputs]
        np.testing.assert_allclose(_dense_mlp_ref(ws2, bs2, xi), _dense_mlp_ref(ws, bs, x), rtol=1e-5, atol=1e-5)
        # the diagnostics' definition: a unit without inputs or outputs is "dead"; compaction removes at
        # least those (and it keeps every unit on an input -> output path: effective_width <= kept width)
        names = [f"l{i + 1}" for i in range(len(ws))]
        rep = unit_report({n: {"kernel": m} for n, m in zip(names, ms)}, [[[(n,)] for n in names]])["layers"]
        for i, n in enumerate(names[:-1]):
            assert ws2[i].shape[1] <= rep[n]["alive"]
            assert ws2[i].shape[1] >= rep[n]["effective_width"]
        if density == 1.0:
            assert [w.shape for w in ws2] == [w.shape for w in ws] and inputs is None


@pytest.mark.parametrize("algo", ["bc", "bcq"])
def test_sparse_policy_95_all_kernels_match_dense_and_flax(tmp_path, algo):
    """95% sparse: compaction removes units; every kernel, batch 1 and a batch past SMALL_ROWS."""
    agent, params, mean, std, path = _agent_file(tmp_path, algo, sparsity=0.95)
    dense = deploy.Policy.load(path, sparse=False)
    rng = np.random.default_rng(3)
    act = jax.jit(agent.act)
    for kernel in deploy.KERNELS:
        pol = deploy.Policy.load(path, sparse=True, kernel=kernel)
        summ = pol.kernel_summary()
        assert set(summ) == ({"vae/d"} if algo == "bc" else {"vae/d", "actor/net/l", "critic/q1/net/l"})
        before = sum(l["units_before"] for net in summ.values() for l in net[:-1])
        after = sum(l["out"] for net in summ.values() for l in net[:-1])
        assert after < before
        for lay in (l for net in summ.values() for l in net):
            assert lay["kernel"][0] in deploy.KERNELS[1:] and lay["kernel"][1] in deploy.KERNELS[1:]
            if kernel != "auto":
                assert lay["kernel"] == (kernel, kernel)
        for batch in [(), (3,), (100,)]:
            obs = rng.normal(size=batch + (5,)).astype(np.float32)
            z = rng.standard_normal(pol.latent_shape(batch)).astype(np.float32)
            got = pol.act(obs, z=z)
            assert got.shape == batch + (3,) and got.dtype == np.float32
            np.testing.assert_allclose(got, dense.act(obs, z=z), rtol=1e-5, atol=1e-5)
            s = pol.normalize(obs)
            a = rng.uniform(-1, 1, batch + (3,)).astype(np.float32)
            zz = rng.uniform(-0.5, 0.5, batch + (6,)).astype(np.float32)
            np.testing.assert_allclose(_decode(pol, s, zz), _decode(dense, s, zz), rtol=1e-5, atol=1e-5)
            if algo == "bcq":
                np.testing.assert_allclose(_perturb(pol, s, a), _perturb(dense, s, a), rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(_q1(pol, s, a), _q1(dense, s, a), rtol=1e-5, atol=1e-5)
        key = jax.random.PRNGKey(4)
        obs = rng.normal(size=(7, 5)).astype(np.float32)
        z_raw = np.asarray(jax.random.normal(key, pol.latent_shape((7,))))
        np.testing.assert_allclose(pol.act(obs, z=z_raw), np.asarray(act(params, mean, std, obs, key)),
                                   rtol=1e-5, atol=1e-5)


def test_sparse_policy_without_scipy_and_public_csr_fallback(tmp_path, monkeypatch):
    _, _, _, _, path = _agent_file(tmp_path, "bcq", sparsity=0.9)
    dense = deploy.Policy.load(path, sparse=False)
    obs = np.random.default_rng(0).normal(size=(80, 5)).astype(np.float32)
    z = np.random.default_rng(1).standard_normal(dense.latent_shape((80,))).astype(np.float32)
    want = dense.act(obs, z=z)
    # scipy present, its private compiled products unavailable: the public csr_matrix product
    monkeypatch.setattr(deploy, "_csr_matvec", None)
    pol = deploy.Policy.load(path, sparse=True, kernel="csr")
    assert not any(l.fast_csr for net in pol._mlps().values() for l in net.layers)
    np.testing.assert_allclose(pol.act(obs, z=z), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pol.act(obs[0], z=z[0]), want[0], rtol=1e-5, atol=1e-5)
    # no scipy at all: numpy kernels only
    monkeypatch.setattr(deploy, "_sps", None)
    monkeypatch.setattr(deploy, "_csr_matvecs", None)
    pol = deploy.Policy.load(path, sparse=True)
    for net in pol.kernel_summary().values():
        for lay in net:
            assert "csr" not in lay["kernel"]
    np.testing.assert_allclose(pol.act(obs, z=z), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="csr"):
        deploy.Policy.load(path, sparse=True, kernel="csr")
    with pytest.raises(ValueError, match="kernel"):
        deploy.Policy.load(path, sparse=True, kernel="bogus")


def test_policy_refuses_non_finite_observations(tmp_path):
    _, _, _, _, path = _agent_file(tmp_path, "bc")
    pol = deploy.Policy.load(path)
    obs = np.zeros((3, 5), np.float32)
    for bad in (np.nan, np.inf, -np.inf):
        obs[1, 2] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            pol.act(obs, rng=0)
    assert deploy.Policy.load(path).sparse and not deploy.Policy.load(path, backend="jax").sparse  # defaults
