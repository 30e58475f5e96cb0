"""Diagnostics of a pruned network: what a mask keeps, what it disconnects, what the decoder relies on.

Functions over params / masks pytrees of ONE network (plus the agent and data
where a loss is needed). Topology comes from ``Agent.network_paths``: kernel
paths input -> output; a *hidden layer* is the output of a kernel that feeds
another kernel of the same path (e.g. e1, e2, d1, d2 of the VAE).

- :func:`layer_densities`: kept / total per kernel.
- :func:`unit_report`: per hidden layer, units with no kept incoming weight,
  with no kept outgoing weight, ``dead`` = either (a local test), and the
  ``effective_width``: units on at least one kept input -> output path
  (reachability propagated through the whole path). Also the input features
  that still reach the path (``inputs_used``).
- :func:`decoder_input_mass`: d1's kernel split into state rows [:obs_dim] and
  latent rows [obs_dim:]: Σ|w| and kept counts of each (masked params).
- :func:`z_reliance`: the decoder's action MSE on dataset samples with z
  sampled from the encoder, z = 0, and z from the clipped prior as when acting.
- :func:`grad_norms` / :func:`agent_grad_norms`: per-layer norms of the masked
  gradient of each network's own loss, at init or at any params during training.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_orl.pruning.masks import is_prunable
from sparse_orl.pruning.synflow import get_kernel


def layer_name(path) -> str:
    """'l2', 'd1', 'mean' ... from a tree path or a key tuple (drops params / net / kernel)."""
    parts = []
    for k in path:
        key = getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))
        parts.append(str(key))
    return "/".join(p for p in parts if p not in ("params", "net", "kernel"))


def layer_densities(masks) -> Dict[str, Dict[str, float]]:
    """{layer: {"kept", "total", "density"}} over the prunable leaves (kernels) of one network."""
    out = {}
    for path, m in jax.tree_util.tree_flatten_with_path(masks)[0]:
        if not is_prunable(m):
            continue
        m = np.asarray(m)
        kept = int(np.count_nonzero(m))
        out[layer_name(path)] = {"kept": kept, "total": int(m.size), "density": kept / m.size}
    return out


def unit_report(masks, paths) -> Dict[str, Any]:
    """Dead units and effective width of every hidden layer of one network.

    Returns ``{"layers": {name: {"units", "no_in", "no_out", "dead",
    "alive", "effective_width"}}, "inputs": {path_first_layer: {"features",
    "used"}}}``. ``dead`` counts units with no kept incoming OR no kept
    outgoing weight; ``alive`` = units − dead; ``effective_width`` counts the
    units on a kept path from some input feature to some output (computed by
    propagating reachability forward and backward through the path).
    """
    layers, inputs = {}, {}
    for path in paths:
        ms = [[np.asarray(get_kernel(masks, key)) != 0 for key in stage] for stage in path]
        names = [[layer_name(key) for key in stage] for stage in path]
        # forward reachability from the inputs (all input features present)
        fwd = [np.ones(ms[0][0].shape[0], bool)]
        for stage in ms[:-1]:
            fwd.append((fwd[-1][:, None] & stage[0]).any(0))
        # backward reachability from any output of the last stage
        bwd = [None] * len(ms)
        bwd[-1] = np.zeros(ms[-1][0].shape[0], bool)
        for m in ms[-1]:
            bwd[-1] |= m.any(1)
        for i in range(len(ms) - 2, -1, -1):
            bwd[i] = (ms[i][0] & bwd[i + 1][None, :]).any(1)
        inputs[names[0][0]] = {"features": int(ms[0][0].shape[0]), "used": int(bwd[0].sum())}
        for i in range(len(ms) - 1):
            w_in = ms[i][0]
            has_in = w_in.any(0)
            has_out = np.zeros(w_in.shape[1], bool)
            for m in ms[i + 1]:
                has_out |= m.any(1)
            dead = ~(has_in & has_out)
            effective = fwd[i + 1] & bwd[i + 1]
            layers[names[i][0]] = {
                "units": int(w_in.shape[1]), "no_in": int((~has_in).sum()), "no_out": int((~has_out).sum()),
                "dead": int(dead.sum()), "alive": int((~dead).sum()), "effective_width": int(effective.sum()),
            }
    return {"layers": layers, "inputs": inputs}


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


def grad_norms(loss_fn, params, batch, masks=None) -> Dict[str, float]:
    """{layer: ‖∂L/∂W ⊙ m‖₂} over the kernels, at ``params`` (masked by ``masks`` if given)."""
    if masks is not None:
        params = jax.tree_util.tree_map(lambda p, m: p * m, params, masks)
    g = jax.grad(loss_fn)(params, batch)
    if masks is not None:
        g = jax.tree_util.tree_map(lambda x, m: x * m, g, masks)
    return {layer_name(p): float(jnp.linalg.norm(jnp.ravel(x)))
            for p, x in jax.tree_util.tree_flatten_with_path(g)[0] if is_prunable(x)}


def agent_grad_norms(agent, params, masks, data, key, obs_mean=None, obs_std=None,
                     batch_size: int = 100) -> Dict[str, Dict[str, float]]:
    """Per-layer masked gradient norms of each network's own loss (``Agent.scoring_problems``).

    Usable at init or on params from any point of training. The critic's TD
    target is computed from ``params`` themselves (used as the target networks).
    """
    from sparse_orl.data.transitions import sample_batch

    k_b, k_n = jax.random.split(key)
    if obs_mean is None:
        obs_mean, obs_std = jnp.zeros((agent.obs_dim,)), jnp.ones((agent.obs_dim,))
    batch = sample_batch(data, k_b, batch_size)
    batch = batch.replace(obs=agent.normalize(obs_mean, obs_std, batch.obs),
                          next_obs=agent.normalize(obs_mean, obs_std, batch.next_obs))

    @jax.jit
    def norms(params, masks, batch):
        masked = jax.tree_util.tree_map(lambda p, m: p * m, params, masks)
        out = {}
        for name, (loss_fn, p, b) in agent.scoring_problems(masked, batch, k_n).items():
            m = masks["critic"]["q1"] if name == "critic" else masks[name]
            g = jax.tree_util.tree_map(lambda x, mm: x * mm, jax.grad(loss_fn)(p, b), m)
            out[name] = {layer_name(kp): jnp.linalg.norm(jnp.ravel(x))
                         for kp, x in jax.tree_util.tree_flatten_with_path(g)[0] if is_prunable(x)}
        return out

    return jax.tree_util.tree_map(float, norms(params, masks, batch))


def diagnose(agent, params, masks, data=None, key=None, obs_mean=None, obs_std=None,
             num_samples: int = 10000, grads: bool = True) -> Dict[str, Any]:
    """All diagnostics of one run: per network densities and units; VAE z reliance; grad norms."""
    key = jax.random.PRNGKey(0) if key is None else key
    out: Dict[str, Any] = {"networks": {}}
    for name in agent.networks:
        m = masks["critic"]["q1"] if name == "critic" else masks[name]
        p = params["critic"]["q1"] if name == "critic" else params[name]
        out["networks"][name] = {"density": layer_densities(m), "units": unit_report(m, agent.network_paths(name, p))}
    out["decoder_input"] = decoder_input_mass(params["vae"], masks["vae"], agent.obs_dim)
    if data is not None:
        k1, k2 = jax.random.split(key)
        out["z_reliance"] = z_reliance(agent, params["vae"], data, k1, obs_mean, obs_std, num_samples)
        if grads:
            out["grad_norms"] = agent_grad_norms(agent, params, masks, data, k2, obs_mean, obs_std)
    return out


def format_diagnostics(label: str, d: Dict[str, Any]) -> str:
    """A plain-text table of :func:`diagnose`'s output."""
    lines = [f"== {label}"]
    for name, net in d["networks"].items():
        units = net["units"]["layers"]
        gn = d.get("grad_norms", {}).get(name, {})
        lines.append(f"  {name}: {'layer':<8s} {'kept':>9s} {'total':>9s} {'density':>8s} "
                     f"{'dead':>6s} {'eff.width':>9s} {'|grad|':>9s}")
        for layer, v in net["density"].items():
            u = units.get(layer)
            dead = f"{u['dead']:>3d}/{u['units']:<3d}" if u else "     -"
            eff = f"{u['effective_width']:>9d}" if u else f"{'-':>9s}"
            g = f"{gn[layer]:9.2e}" if layer in gn else f"{'-':>9s}"
            flag = "  <-- COLLAPSED" if v["kept"] == 0 else ""
            lines.append(f"  {'':{len(name)}s}  {layer:<8s} {v['kept']:>9d} {v['total']:>9d} "
                         f"{v['density']:8.2%} {dead:>6s} {eff} {g}{flag}")
        for first, v in net["units"]["inputs"].items():
            lines.append(f"  {'':{len(name)}s}  inputs of {first}: {v['used']}/{v['features']} features reach an output")
    di = d["decoder_input"]
    lines.append(f"  decoder d1 rows: state kept {di['state_kept']}/{di['state_total']} |w| {di['state_mass']:.2f}"
                 f" ({di['state_mass_per_row']:.3f}/row); latent kept {di['latent_kept']}/{di['latent_total']}"
                 f" |w| {di['latent_mass']:.2f} ({di['latent_mass_per_row']:.3f}/row); latent share "
                 f"{di['latent_mass_share']:.1%}")
    if "z_reliance" in d:
        z = d["z_reliance"]
        lines.append(f"  action MSE (n={z['num_samples']}): z sampled {z['mse_z_sampled']:.4f}  "
                     f"z=0 {z['mse_z_zero']:.4f}  z prior(act) {z['mse_z_prior']:.4f}")
    return "\n".join(lines)


def plot_diagnostics(results: Sequence[Tuple[str, Dict[str, Any]]], path: str, title: str = "") -> str:
    """Save a PNG comparing runs: density and effective width per VAE layer, z reliance, d1 path mass."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r[0] for r in results]
    has_z = all("z_reliance" in r[1] for r in results)
    has_g = all("grad_norms" in r[1] for r in results)
    npanels = 4 + int(has_z) + int(has_g)  # density, width, d1 mass, [z], [grads], dead-unit table
    ncols = 3
    nrows = -(-npanels // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 4.6 * nrows))
    axes = list(np.ravel(axes))
    for extra in axes[npanels:]:
        extra.axis("off")
    axes = axes[:npanels]
    nets = list(results[0][1]["networks"])
    net = "vae" if "vae" in nets else nets[0]
    layers = list(results[0][1]["networks"][net]["density"])
    x = np.arange(len(layers))
    wbar = 0.8 / len(results)
    ax = axes[0]
    for i, (lab, d) in enumerate(results):
        dens = [d["networks"][net]["density"][l]["density"] for l in layers]
        ax.bar(x + i * wbar, np.maximum(dens, 1e-4), wbar, label=lab)
    ax.set_yscale("log")
    ax.set_xticks(x + 0.4 - wbar / 2, layers)
    ax.set_title(f"{net}: density per layer (log)")
    ax.legend(fontsize=8)
    ax = axes[1]
    hid = list(results[0][1]["networks"][net]["units"]["layers"])
    xh = np.arange(len(hid))
    for i, (lab, d) in enumerate(results):
        u = d["networks"][net]["units"]["layers"]
        ax.bar(xh + i * wbar, [u[l]["effective_width"] / u[l]["units"] for l in hid], wbar, label=lab)
    ax.set_xticks(xh + 0.4 - wbar / 2, hid)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{net}: effective width / units")
    col = 2
    ax = axes[col]
    xs = np.arange(len(results))
    st = [d["decoder_input"]["state_mass_per_row"] for _, d in results]
    lt = [d["decoder_input"]["latent_mass_per_row"] for _, d in results]
    ax.bar(xs - 0.2, st, 0.4, label="state rows")
    ax.bar(xs + 0.2, lt, 0.4, label="latent rows")
    ax.set_xticks(xs, labels, rotation=20, fontsize=8)
    ax.set_title("decoder d1: kept |w| per input row")
    ax.legend(fontsize=8)
    if has_z:
        col += 1
        ax = axes[col]
        for j, (k, name) in enumerate((("mse_z_sampled", "z sampled"), ("mse_z_zero", "z = 0"),
                                       ("mse_z_prior", "z prior (acting)"))):
            ax.bar(xs + (j - 1) * 0.27, [d["z_reliance"][k] for _, d in results], 0.27, label=name)
        ax.set_xticks(xs, labels, rotation=20, fontsize=8)
        ax.set_title("decoder action MSE on dataset")
        ax.legend(fontsize=8)
    if has_g:
        col += 1
        ax = axes[col]
        for i, (lab, d) in enumerate(results):
            g = d["grad_norms"].get(net, {})
            ax.bar(x + i * wbar, [max(g.get(l, 0.0), 1e-12) for l in layers], wbar, label=lab)
        ax.set_yscale("log")
        ax.set_xticks(x + 0.4 - wbar / 2, layers)
        ax.set_title(f"{net}: masked grad norm per layer")
    ax = axes[-1]
    ax.axis("off")
    rows = [[lab] + [f"{d['networks'][net]['units']['layers'][l]['dead']}" for l in hid] for lab, d in results]
    tab = ax.table(cellText=rows, colLabels=["dead units"] + hid, loc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.scale(1, 1.4)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
