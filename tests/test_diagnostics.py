"""Diagnostics on hand-made masks: densities, dead units, effective width, decoder path mass, z reliance."""
import jax
import jax.numpy as jnp
import numpy as np

from sparse_orl import pruning
from sparse_orl.algos import BCConfig, make_algorithm, vae_diagnostics
from sparse_orl.data.transitions import Transitions
from sparse_orl.report import diagnostics


def _k(a):
    return {"kernel": np.asarray(a, np.float32), "bias": np.ones(np.shape(a)[1], np.float32)}


def test_dead_units_and_effective_width_on_hand_made_masks():
    # 3 inputs -> 4 hidden -> 3 hidden -> 2 outputs
    l1 = np.zeros((3, 4))  # units 2, 3 of h1: no incoming
    l1[0, 0] = l1[1, 1] = l1[2, 1] = 1
    l2 = np.zeros((4, 3))  # h1 unit 1: no outgoing; h2 unit 2: no incoming
    l2[0, 0] = l2[3, 1] = 1
    l3 = np.zeros((3, 2))  # h2 unit 0: no outgoing
    l3[1, 0] = l3[2, 1] = 1
    masks = {"net": {"l1": _k(l1), "l2": _k(l2), "l3": _k(l3)}}
    rep = diagnostics.unit_report(masks, pruning.mlp_paths(masks["net"], ("net",)))
    h1, h2 = rep["layers"]["l1"], rep["layers"]["l2"]
    assert (h1["units"], h1["no_in"], h1["no_out"], h1["dead"], h1["alive"]) == (4, 2, 2, 3, 1)
    assert (h2["units"], h2["no_in"], h2["no_out"], h2["dead"], h2["alive"]) == (3, 1, 1, 2, 1)
    # h1 unit 0 only feeds h2 unit 0, which feeds no output; h2 unit 1 is fed by h1 unit 3 (no input)
    assert h1["effective_width"] == 0 and h2["effective_width"] == 0
    assert rep["inputs"]["l1"] == {"features": 3, "used": 0}
    l3[0, 0] = 1  # reconnect h2 unit 0: input 0 -> h1 0 -> h2 0 -> out 0
    masks["net"]["l3"] = _k(l3)
    rep = diagnostics.unit_report(masks, pruning.mlp_paths(masks["net"], ("net",)))
    assert rep["layers"]["l1"]["effective_width"] == 1 and rep["layers"]["l2"]["effective_width"] == 1
    assert rep["inputs"]["l1"]["used"] == 1
    dens = diagnostics.layer_densities(masks)
    assert dens["l1"] == {"kept": 3, "total": 12, "density": 0.25}


def test_vae_units_heads_and_decoder_input_mass():
    agent = make_algorithm(BCConfig(vae_only=True, vae_hidden=(4, 4)), 3, 1, 1.0)
    params = jax.tree_util.tree_map(np.asarray, agent.init_params(jax.random.PRNGKey(0))["vae"])
    masks = jax.tree_util.tree_map(np.ones_like, params)
    masks["mean"]["kernel"][:] = 0
    masks["log_std"]["kernel"][1:] = 0  # e2 units 1..3 feed no head -> no outgoing
    d1 = np.zeros((3 + 2, 4))  # latent row 4 fully pruned
    d1[:3] = 1
    d1[3, 0] = 1
    masks["d1"]["kernel"] = d1
    rep = diagnostics.unit_report(masks, agent.network_paths("vae", params))
    assert rep["layers"]["e2"]["no_out"] == 3 and rep["layers"]["e2"]["effective_width"] == 1
    assert rep["layers"]["d1"]["dead"] == 0
    assert rep["inputs"]["d1"] == {"features": 5, "used": 4}
    mass = vae_diagnostics.decoder_input_mass(params, masks, obs_dim=3)
    w = np.abs(params["d1"]["kernel"])
    np.testing.assert_allclose(mass["state_mass"], w[:3].sum(), rtol=1e-6)
    np.testing.assert_allclose(mass["latent_mass"], w[3, 0], rtol=1e-6)
    assert (mass["state_kept"], mass["latent_kept"], mass["state_total"], mass["latent_total"]) == (12, 1, 12, 8)


def test_z_reliance_and_grad_norms():
    agent = make_algorithm(BCConfig(vae_only=True, vae_hidden=(6, 6)), 3, 1, 1.0)
    rng = np.random.default_rng(0)
    data = Transitions(obs=jnp.asarray(rng.normal(size=(64, 3)), jnp.float32),
                       action=jnp.asarray(rng.uniform(-1, 1, (64, 1)), jnp.float32),
                       reward=jnp.zeros(64), next_obs=jnp.zeros((64, 3)), done=jnp.zeros(64))
    params = agent.init_params(jax.random.PRNGKey(0))
    masks = pruning.ones_like_masks(params)
    # cut every latent row of d1: the decoder cannot see z, all three MSEs agree
    masks["vae"]["d1"]["kernel"] = masks["vae"]["d1"]["kernel"].at[3:].set(0.0)
    z = vae_diagnostics.z_reliance(agent, jax.tree_util.tree_map(lambda p, m: p * m, params["vae"], masks["vae"]),
                               data, jax.random.PRNGKey(1), num=64)
    assert z["num_samples"] == 64
    np.testing.assert_allclose(z["mse_z_sampled"], z["mse_z_zero"], rtol=1e-6)
    np.testing.assert_allclose(z["mse_z_prior"], z["mse_z_zero"], rtol=1e-6)
    g = diagnostics.agent_grad_norms(agent, params, masks, data, jax.random.PRNGKey(2), batch_size=16)
    assert set(g) == {"vae"} and g["vae"]["d2"] > 0 and np.isfinite(list(g["vae"].values())).all()
    masks["vae"]["d2"]["kernel"] = masks["vae"]["d2"]["kernel"] * 0
    g = diagnostics.agent_grad_norms(agent, params, masks, data, jax.random.PRNGKey(2), batch_size=16)
    assert g["vae"]["d2"] == 0.0
    d = diagnostics.diagnose(agent, params, masks, data, num_samples=64, grads=False)
    text = diagnostics.format_diagnostics("hand", d)
    assert "COLLAPSED" in text and "d2" in text
