"""A deploy file must carry its acting program: a file without one is refused by ``Policy.load`` with a
line that says what is missing and how to get a good file, not a KeyError later in ``act``."""
import jax
import numpy as np
import pytest

from sparse_orl import deploy
from sparse_orl.algos import make_config
from sparse_orl.algos.registry import make_algorithm
from sparse_orl.export import save_compact

OBS, ACT = 5, 2


def _policy_parts():
    """Params, all-ones masks and the export metadata of a tiny VAE-only BC policy (as export_run writes them)."""
    algo = make_algorithm(make_config("bc", vae_only=True, vae_hidden=(8, 8)), OBS, ACT, 1.0)
    params = jax.tree_util.tree_map(np.asarray, algo.init_params(jax.random.PRNGKey(0)))
    params = {k: params[k] for k in algo.acting_networks}
    masks = jax.tree_util.tree_map(lambda x: np.ones_like(x, np.float32), params)
    config = algo.config.to_dict() | {"obs_dim": OBS, "act_dim": ACT, "max_action": 1.0, "env_id": None}
    meta = {"kind": "sparse_orl.policy", "config": config, "acting": algo.acting_program(),
            "obs_mean": np.zeros(OBS, np.float32), "obs_std": np.ones(OBS, np.float32)}
    return params, masks, meta


def test_a_file_with_its_acting_program_loads_and_acts(tmp_path):
    params, masks, meta = _policy_parts()
    path = str(tmp_path / "ok.sorl")
    save_compact(path, params, masks, meta)
    for sparse in (True, False):
        policy = deploy.Policy.load(path, sparse=sparse)
        assert policy.act(np.zeros(OBS, np.float32)).shape == (ACT,)


def test_a_file_without_an_acting_program_is_refused_with_a_clear_message(tmp_path):
    params, masks, meta = _policy_parts()
    path = str(tmp_path / "old.sorl")
    save_compact(path, params, masks, {k: v for k, v in meta.items() if k != "acting"})
    for kw in ({}, {"sparse": False}, {"backend": "jax"}):
        with pytest.raises(ValueError) as e:
            deploy.Policy.load(path, **kw)
        msg = str(e.value)
        assert "\n" not in msg
        assert msg.startswith(f"compact file {path} holds no acting program"), msg
        assert "export the run again with sparse_orl.export.export_run" in msg


def test_a_file_without_an_agent_config_is_refused_naming_it(tmp_path):
    params, masks, meta = _policy_parts()
    path = str(tmp_path / "bare.sorl")
    save_compact(path, params, masks, {"acting": meta["acting"]})
    with pytest.raises(ValueError, match=r"^compact file .*bare\.sorl holds no agent config \(not written by export_run\)$"):
        deploy.Policy.load(path)
