"""``deploy.Policy.load`` checks a file when it LOADS (config, acting program, the layers it reads): a bad
file is one ``ValueError`` line naming the file and what is wrong, never a KeyError at the first ``act()``.
And the kernel choice: a dense file (no pruned weight) loads without timing kernels."""
import copy
import time

import jax
import numpy as np
import pytest

from sparse_orl import deploy
from sparse_orl.algos import make_config
from sparse_orl.algos.registry import make_algorithm
from sparse_orl.export import save_compact

OBS, ACT = 5, 2


def _parts(algo="bcq", density=1.0, hidden=8):
    """Flat params, masks and export metadata of a tiny policy (as ``export_run`` writes them)."""
    widths = (hidden, hidden)
    kw = dict(vae_only=True, vae_hidden=widths) if algo == "bc" else dict(
        actor_hidden=widths, critic_hidden=widths, vae_hidden=widths)
    a = make_algorithm(make_config(algo, **kw), OBS, ACT, 1.0)
    params = jax.tree_util.tree_map(np.asarray, a.init_params(jax.random.PRNGKey(0)))
    nets = sorted({p.split("/")[0] for p in a.acting_networks})
    rng = np.random.default_rng(0)
    masks = jax.tree_util.tree_map(
        lambda x: (rng.uniform(size=x.shape) < density).astype(np.float32) if x.ndim == 2 and density < 1
        else np.ones_like(x, np.float32), params)
    params = jax.tree_util.tree_map(lambda p, m: p * m, params, masks)
    config = a.config.to_dict() | {"obs_dim": OBS, "act_dim": ACT, "max_action": 1.0, "env_id": None}
    meta = {"kind": "sparse_orl.policy", "config": config, "acting": a.acting_program(),
            "obs_mean": np.zeros(OBS, np.float32), "obs_std": np.ones(OBS, np.float32)}
    return {n: params[n] for n in nets}, {n: masks[n] for n in nets}, meta


def _save(tmp_path, name, params, masks, meta):
    path = str(tmp_path / f"{name}.sorl")
    save_compact(path, params, masks, meta)
    return path


def _refused(path, match, **kw):
    with pytest.raises(ValueError) as e:
        deploy.Policy.load(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"compact file {path}: "), msg
    assert match in msg, msg
    return msg


def _op(meta, kind):
    return next(op for op in meta["acting"]["ops"] if op["op"] == kind)


# every way a file can be unable to act, each found at load (numpy sparse, numpy dense and jax)
CASES = {
    "unknown_op": (lambda m, p: _op(m, "tanh").update(op="softmax"), "'softmax', an op this reader does not know"),
    "unproduced_value": (lambda m, p: _op(m, "add").update(y="nothing"),
                         "reads the value 'nothing', which nothing before it produces"),
    "missing_output": (lambda m, p: m["acting"].update(output="act"), "output 'act' is a value nothing produces"),
    "op_without_field": (lambda m, p: _op(m, "clip").pop("hi"), "lacks the field(s) 'hi'"),
    "missing_obs_dim": (lambda m, p: m["config"].pop("obs_dim"), "its config lacks 'obs_dim'"),
    "missing_act_dim_and_max_action": (lambda m, p: (m["config"].pop("act_dim"), m["config"].pop("max_action")),
                                       "its config lacks 'act_dim', 'max_action'"),
    "bad_obs_dim": (lambda m, p: m["config"].update(obs_dim="five"), "config 'obs_dim' must be a positive integer"),
    "missing_bias": (lambda m, p: p["vae"]["d2"].pop("bias"), "the file lacks vae/d2/bias"),
    "program_reads_other_net": (lambda m, p: _op(m, "mlp").update(net="encoder"),
                                "reads the network layers encoder/d1, encoder/d2, ..., which the file lacks"),
    "wrong_input_width": (lambda m, p: m["acting"]["noise"]["z"].update(shape=[10, 3]),
                          "feeds 8 features (5 + 3 of 's', 'z') to vae/d1, which takes 9"),
    "wrong_output_width": (lambda m, p: m["config"].update(act_dim=3), "has 2 components, config act_dim is 3"),
    "bad_noise": (lambda m, p: m["acting"]["noise"].update(z={"shape": [4]}), "noise 'z' must be"),
    "obs_mean_shape": (lambda m, p: m.update(obs_mean=np.zeros(3, np.float32)), "'obs_mean' has shape (3,)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_file_that_cannot_act_is_refused_at_load_in_one_line(tmp_path, case):
    params, masks, meta = _parts("bcq")
    params, masks, meta = copy.deepcopy(params), copy.deepcopy(masks), copy.deepcopy(meta)
    edit, match = CASES[case]
    edit(meta, params)
    if case == "missing_bias":
        del masks["vae"]["d2"]["bias"]
    path = _save(tmp_path, case, params, masks, meta)
    for kw in ({}, {"sparse": False}, {"backend": "jax"}):
        _refused(path, match, **kw)


def test_the_layer_named_in_a_missing_layer_message(tmp_path):
    params, masks, meta = _parts("bcq")
    del params["actor"]["net"]["l2"], masks["actor"]["net"]["l2"]
    msg = _refused(_save(tmp_path, "gap", params, masks, meta), "actor/net")
    assert "l1, l3" in msg


def test_a_good_file_loads_and_acts_in_every_mode(tmp_path):
    params, masks, meta = _parts("bcq", density=0.3)
    path = _save(tmp_path, "ok", params, masks, meta)
    obs = np.random.default_rng(0).normal(size=(4, OBS)).astype(np.float32)
    want = deploy.Policy.load(path, sparse=False).act(obs, rng=1)
    for kw in ({}, {"backend": "jax"}, {"kernel": "gather"}):
        np.testing.assert_allclose(deploy.Policy.load(path, **kw).act(obs, rng=1), want, rtol=1e-5, atol=1e-5)


def test_a_dense_file_loads_without_timing_kernels(tmp_path, monkeypatch):
    """No pruned weight: every layer is dense at once (the per-layer timing is what made a dense file
    take seconds); the kernel summary says so."""
    params, masks, meta = _parts("bcq", hidden=64)
    path = _save(tmp_path, "dense", params, masks, meta)
    timed, run = [], deploy._Layer.run

    def counting(self, h, kernel):
        timed.append(kernel)
        return run(self, h, kernel)

    monkeypatch.setattr(deploy._Layer, "run", counting)
    pol = deploy.Policy.load(path)
    assert not timed
    for net in pol.kernel_summary().values():
        for layer in net:
            assert layer["kernel"] == ("dense", "dense") and layer["reason"] == "no pruned weights"


def test_a_sparse_file_times_its_sparse_layers_and_says_why(tmp_path):
    params, masks, meta = _parts("bc", density=0.05, hidden=64)
    pol = deploy.Policy.load(_save(tmp_path, "sparse", params, masks, meta))
    reasons = {layer["reason"] for net in pol.kernel_summary().values() for layer in net}
    assert all(r in ("timed", "no pruned weights") or r.startswith("density") for r in reasons), reasons
    assert "timed" in reasons
    dense = deploy.Policy.load(_save(tmp_path, "dense", *_parts("bc", hidden=64)), sparse=False)
    assert {layer["reason"] for net in dense.kernel_summary().values() for layer in net} == {"sparse=False"}


def test_a_mostly_dense_layer_is_dense_untimed(tmp_path):
    params, masks, meta = _parts("bc", density=0.8, hidden=64)
    pol = deploy.Policy.load(_save(tmp_path, "mostly", params, masks, meta))
    hidden = pol.kernel_summary()["vae/d"][1]  # 64 x 64 at ~80% kept (compaction keeps every unit)
    assert hidden["kernel"] == ("dense", "dense") and hidden["reason"].startswith("density 8")


def test_dense_file_load_is_fast(tmp_path):
    """The 750-750 VAE decoder of the paper, no pruned weight: loads in well under a second (it took ~6 s
    of kernel timing)."""
    params, masks, meta = _parts("bc", hidden=750)
    path = _save(tmp_path, "big", params, masks, meta)
    t0 = time.perf_counter()
    deploy.Policy.load(path)
    assert time.perf_counter() - t0 < 3.0  # ~0.1 s here; the kernel timing it skips took seconds


def test_without_scipy_the_summary_says_why_there_is_no_csr(tmp_path, monkeypatch):
    params, masks, meta = _parts("bc", density=0.05, hidden=64)
    path = _save(tmp_path, "noscipy", params, masks, meta)
    monkeypatch.setattr(deploy, "_sps", None)
    monkeypatch.setattr(deploy, "_csr_matvec", None)
    monkeypatch.setattr(deploy, "_csr_matvecs", None)
    pol = deploy.Policy.load(path)
    layers = [layer for net in pol.kernel_summary().values() for layer in net]
    assert all("csr" not in layer["kernel"] for layer in layers)
    assert any(layer["reason"] == "timed (no scipy: no csr)" for layer in layers)
    assert "scipy" in deploy.__doc__ and "HAVE_SCIPY" in deploy.__doc__
