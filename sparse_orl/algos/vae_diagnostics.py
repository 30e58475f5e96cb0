"""Diagnostics of BCQ's VAE (BCQ and BC): what the decoder's input layer and its latent carry.

- :func:`decoder_input_mass`: d1's kernel split into state rows [:obs_dim] and
  latent rows [obs_dim:]: Σ|w| and kept counts of each (masked params).
- :func:`z_reliance`: the decoder's action MSE on dataset samples with z
  sampled from the encoder, z = 0, and z from the clipped prior as when acting.
"""
from __future__ import annotations

from typing import Any, Dict

import jax
import jax.numpy as jnp
import numpy as np


def decoder_input_mass(vae_params, vae_masks, obs_dim: int, layer: str = "d1") -> Dict[str, float]:
    """State-path vs latent-path weight of the decoder's input layer ``d1``.

    Rows [:obs_dim] of the kernel read the state, rows [obs_dim:] the latent z.
    Returns Σ|w·m|, kept counts, totals, and each path's share of the mass.
    """
    w = np.asarray(vae_params[layer]["kernel"], np.float64) * (np.asarray(vae_masks[layer]["kernel"]) != 0)
    m = np.asarray(vae_masks[layer]["kernel"]) != 0
    s_mass, z_mass = float(np.abs(w[:obs_dim]).sum()), float(np.abs(w[obs_dim:]).sum())
    tot = s_mass + z_mass
    return {
        "state_mass": s_mass, "latent_mass": z_mass,
        "state_kept": int(m[:obs_dim].sum()), "latent_kept": int(m[obs_dim:].sum()),
        "state_total": int(m[:obs_dim].size), "latent_total": int(m[obs_dim:].size),
        "latent_mass_share": z_mass / tot if tot > 0 else float("nan"),
        # mass per row: how strongly one state feature vs one latent coordinate drives d1
        "state_mass_per_row": s_mass / max(obs_dim, 1),
        "latent_mass_per_row": z_mass / max(m.shape[0] - obs_dim, 1),
    }


def z_reliance(agent, vae_params, data, key, obs_mean=None, obs_std=None, num: int = 10000,
               chunk: int = 5000) -> Dict[str, float]:
    """Decoder action MSE on ``num`` dataset samples with three latents.

    ``mse_z_sampled``: z = μ(s, a) + σ(s, a)·ε from the encoder (the training
    reconstruction); ``mse_z_zero``: z = 0; ``mse_z_prior``: z ~ N(0, I)
    clipped to ±``agent.acting_latent_clip`` (as when acting). A decoder that
    ignores z has all three equal; mse_z_zero ≫ mse_z_sampled means the
    decoder leans on information the encoder passes through z, which acting
    cannot supply.
    """
    n_data = int(data.obs.shape[0])
    k_idx, k_eps, k_prior = jax.random.split(key, 3)
    idx = np.asarray(jax.random.choice(k_idx, n_data, (min(num, n_data),), replace=False))
    obs_all = np.asarray(data.obs)[idx]
    act_all = np.asarray(data.action)[idx]
    if obs_mean is None:
        obs_mean, obs_std = np.zeros(agent.obs_dim, np.float32), np.ones(agent.obs_dim, np.float32)

    @jax.jit
    def sums(vae_params, obs, act, k1, k2):
        obs = agent.normalize(jnp.asarray(obs_mean), jnp.asarray(obs_std), obs)
        mean, std = agent.vae.apply({"params": vae_params}, obs, act, method=type(agent.vae).encode)
        z_s = mean + std * jax.random.normal(k1, mean.shape)
        z_p = agent.clipped_latent(k2, obs.shape[:-1], agent.acting_latent_clip)
        out = {}
        for name, z in (("mse_z_sampled", z_s), ("mse_z_zero", jnp.zeros_like(z_s)), ("mse_z_prior", z_p)):
            out[name] = jnp.sum(jnp.mean(jnp.square(agent.decode(vae_params, obs, z) - act), -1))
        return out

    tot = {}
    for i, start in enumerate(range(0, len(idx), chunk)):
        o = jnp.asarray(obs_all[start:start + chunk], jnp.float32)
        a = jnp.asarray(act_all[start:start + chunk], jnp.float32)
        part = sums(vae_params, o, a, jax.random.fold_in(k_eps, i), jax.random.fold_in(k_prior, i))
        for k, v in part.items():
            tot[k] = tot.get(k, 0.0) + float(v)
    return {k: v / len(idx) for k, v in tot.items()} | {"num_samples": int(len(idx))}


def diagnose_vae(agent, params, masks, data, key, obs_mean, obs_std, num_samples: int) -> Dict[str, Any]:
    """``Algorithm.diagnostics`` of BCQ / BC: decoder input mass, z reliance (with data), notes."""
    di = decoder_input_mass(params["vae"], masks["vae"], agent.obs_dim)
    out: Dict[str, Any] = {"decoder_input": di, "bars": {"decoder d1: kept |w| per input row": {
        "ylabel": "Σ|w| / rows", "series": {"state rows": di["state_mass_per_row"],
                                            "latent rows": di["latent_mass_per_row"]}}}}
    notes = [f"decoder d1 rows: state kept {di['state_kept']}/{di['state_total']} |w| {di['state_mass']:.2f}"
             f" ({di['state_mass_per_row']:.3f}/row); latent kept {di['latent_kept']}/{di['latent_total']}"
             f" |w| {di['latent_mass']:.2f} ({di['latent_mass_per_row']:.3f}/row); latent share "
             f"{di['latent_mass_share']:.1%}"]
    if data is not None:
        z = out["z_reliance"] = z_reliance(agent, params["vae"], data, key, obs_mean, obs_std, num_samples)
        out["bars"]["decoder action MSE on dataset"] = {"ylabel": "MSE(decode(s, z), a)", "series": {
            "z sampled": z["mse_z_sampled"], "z = 0": z["mse_z_zero"], "z prior (acting)": z["mse_z_prior"]}}
        notes.append(f"action MSE (n={z['num_samples']}): z sampled {z['mse_z_sampled']:.4f}  "
                     f"z=0 {z['mse_z_zero']:.4f}  z prior(act) {z['mse_z_prior']:.4f}")
    out["notes"] = notes
    return out
