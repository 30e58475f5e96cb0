"""Diagnostics of a pruned network: what a mask keeps, what it disconnects, what the decoder relies on.

Functions over params / masks pytrees of ONE network (plus the agent and data
where a loss is needed). Topology comes from ``Algorithm.network_paths``: kernel
paths input -> output; a *hidden layer* is the output of a kernel that feeds
another kernel of the same path (e.g. e1, e2, d1, d2 of the VAE).

- :func:`layer_densities`: kept / total per kernel.
- :func:`unit_report`: per hidden layer, units with no kept incoming weight,
  with no kept outgoing weight, ``dead`` = either (a local test), and the
  ``effective_width``: units on at least one kept input -> output path
  (reachability propagated through the whole path). Also the input features
  that still reach the path (``inputs_used``).
- the algorithm's own diagnostics (``Algorithm.diagnostics``; BCQ / BC: the VAE
  decoder's input mass and z reliance, :mod:`sparse_orl.algos.vae_diagnostics`).
- :func:`grad_norms` / :func:`agent_grad_norms`: per-layer norms of the masked
  gradient of each network's own loss, at init or at any params during training.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_orl.pruning.masks import is_prunable
from sparse_orl.pruning.report import layer_name
from sparse_orl.pruning.synflow import get_kernel
from sparse_orl.data.transitions import sample_batch
from sparse_orl.report.figure import PALETTE, layer_key, pyplot


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

    k_b, k_n = jax.random.split(key)
    if obs_mean is None:
        obs_mean, obs_std = jnp.zeros((agent.obs_dim,)), jnp.ones((agent.obs_dim,))
    batch = agent.normalize_batch((obs_mean, obs_std), sample_batch(data, k_b, batch_size))

    @jax.jit
    def norms(params, masks, batch):
        masked = jax.tree_util.tree_map(lambda p, m: p * m, params, masks)
        scored_masks = agent.scored_view(masks)
        out = {}
        for name, (loss_fn, p, b) in agent.scoring_problems(masked, batch, k_n).items():
            g = jax.tree_util.tree_map(lambda x, mm: x * mm, jax.grad(loss_fn)(p, b), scored_masks[name])
            out[name] = {layer_name(kp): jnp.linalg.norm(jnp.ravel(x))
                         for kp, x in jax.tree_util.tree_flatten_with_path(g)[0] if is_prunable(x)}
        return out

    return jax.tree_util.tree_map(float, norms(params, masks, batch))


def diagnose(agent, params, masks, data=None, key=None, obs_mean=None, obs_std=None,
             num_samples: int = 10000, grads: bool = True) -> Dict[str, Any]:
    """All diagnostics of one run: per scored network densities and units, masked gradient
    norms, and the algorithm's own (``Algorithm.diagnostics``, e.g. BCQ's VAE z reliance)."""
    key = jax.random.PRNGKey(0) if key is None else key
    out: Dict[str, Any] = {"networks": {}}
    sp, sm = agent.scored_view(params), agent.scored_view(masks)
    for name in agent.networks:
        out["networks"][name] = {"density": layer_densities(sm[name]),
                                 "units": unit_report(sm[name], agent.network_paths(name, sp[name]))}
    k1, k2 = jax.random.split(key)
    out.update(agent.diagnostics(params, masks, data, k1, obs_mean, obs_std, num_samples))
    if data is not None and grads:
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
    lines += [f"  {line}" for line in d.get("notes", [])]
    return "\n".join(lines)


def _log_bars(ax, x, values, width, color, label, floor):
    """Bars of ``values`` on a log axis; an exact 0 (not drawable on a log axis) is drawn hatched at
    ``floor`` and labelled "0", so it is never mistaken for a tiny value."""
    values = np.asarray(values, float)
    bars = ax.bar(x, np.where(values > 0, values, floor), width, label=label, color=color)
    for bar, v in zip(bars, values):
        if v <= 0:
            bar.set_hatch("///")
            bar.set_facecolor("white")
            bar.set_edgecolor(color)
            ax.annotate("0", (bar.get_x() + bar.get_width() / 2, floor), textcoords="offset points", xytext=(0, 1),
                        ha="center", va="bottom", fontsize=7)
    return bars


def _floor(values) -> float:
    """Where an exact 0 is drawn on a log axis: a decade below the smallest positive value."""
    pos = [v for v in values if v > 0]
    return min(pos) / 10 if pos else 1e-3


def _log_layer_panel(ax, results, layers, wbar: float, values, ylabel: str, title: str) -> None:
    """One bar per run and layer of ``values`` (per run, per layer), log scale with exact zeros hatched."""
    x = np.arange(len(layers))
    floor = _floor([v for vs in values for v in vs])
    for i, (lab, _d) in enumerate(results):
        _log_bars(ax, x + i * wbar, values[i], wbar, PALETTE[i % len(PALETTE)], lab, floor)
    ax.set_yscale("log")
    ax.set_xticks(x + 0.4 - wbar / 2, layers)
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def _width_panel(ax, results, net: str, wbar: float) -> None:
    """Units on an input-output path / units per hidden layer of ``net``; a zero is labelled "0"."""
    hid = sorted(results[0][1]["networks"][net]["units"]["layers"], key=layer_key)
    xh = np.arange(len(hid))
    for i, (lab, d) in enumerate(results):
        u = d["networks"][net]["units"]["layers"]
        vals = [u[l]["effective_width"] / u[l]["units"] for l in hid]
        bars = ax.bar(xh + i * wbar, vals, wbar, label=lab, color=PALETTE[i % len(PALETTE)])
        for bar, v in zip(bars, vals):
            if v == 0:  # no bar to see: say 0
                ax.annotate("0", (bar.get_x() + bar.get_width() / 2, 0), textcoords="offset points",
                            xytext=(0, 1), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xh + 0.4 - wbar / 2, hid)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("units on an input-output path / units")
    ax.set_title(f"{net}: effective width per hidden layer")


def _bar_panels(axes_row, results, labels) -> None:
    """The algorithm's own panels ({title: {"series": {name: value}, "ylabel"}} per run), one per axis."""
    bar_titles = list(results[0][1].get("bars", {}))
    xs = np.arange(len(results))
    for col, ax in enumerate(axes_row):
        if col >= len(bar_titles):
            ax.axis("off")
            continue
        t = bar_titles[col]
        spec = results[0][1]["bars"][t]
        series = list(spec["series"])
        w = 0.8 / len(series)
        for j, name in enumerate(series):
            ax.bar(xs + (j - (len(series) - 1) / 2) * w, [d["bars"][t]["series"][name] for _, d in results],
                   w, label=name, color=PALETTE[j % len(PALETTE)])
        ax.set_xticks(xs, labels, rotation=20, fontsize=8, ha="right")
        ax.set_ylabel(spec.get("ylabel", ""))
        ax.set_title(t, pad=20)
        # above the axes, under the title: never over a bar
        ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(series), frameon=False)


def _legend_and_save(fig, plt, labels, title: str, path: str) -> None:
    """One legend of the runs for every per-network panel, outside them (under the title, above the
    panels; plain colour patches, as a run's first bar may be a hatched 0); then save and close."""
    from matplotlib.patches import Patch

    handles = [Patch(color=PALETTE[i % len(PALETTE)], label=lab) for i, lab in enumerate(labels)]
    rows = math.ceil(len(labels) / 7)
    height = fig.get_figheight()
    title_in, legend_in = (0.45 if title else 0.05), 0.25 * rows + 0.05  # inches
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - title_in / height),
               ncol=math.ceil(len(labels) / rows), frameon=False, fontsize=9)
    top = 1 - (title_in + legend_in) / height
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, top))  # room for the title and the legend above the panels
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_diagnostics(results: Sequence[Tuple[str, Dict[str, Any]]], path: str, title: str = "") -> str:
    """Save a PNG comparing runs: one row per scored network (density per layer, effective
    width per hidden layer, masked gradient norm per layer), then the algorithm's own
    bar panels (``"bars"`` of ``Algorithm.diagnostics``: {title: {series: value}} per run).

    One legend of the runs, outside the panels; exact zeros (a collapsed layer, a zero gradient, no
    unit left) are drawn hatched and labelled "0", and the axis labels say so."""
    plt = pyplot()  # the Agg backend is chosen only when a figure is drawn, never at import
    labels = [r[0] for r in results]
    nets = list(results[0][1]["networks"])
    has_g = all("grad_norms" in r[1] for r in results)
    has_bars = bool(results[0][1].get("bars"))
    ncols = 3
    nrows = len(nets) + (1 if has_bars else 0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 4.2 * nrows), squeeze=False)
    wbar = 0.8 / len(results)
    for row, net in enumerate(nets):
        layers = sorted(results[0][1]["networks"][net]["density"], key=layer_key)
        density = [[d["networks"][net]["density"][l]["density"] for l in layers] for _, d in results]
        _log_layer_panel(axes[row][0], results, layers, wbar, density, "kept / total (log; hatched 0 = collapsed)",
                         f"{net}: density per layer")
        _width_panel(axes[row][1], results, net, wbar)
        if has_g:
            grads = [[d["grad_norms"].get(net, {}).get(l, 0.0) for l in layers] for _, d in results]
            _log_layer_panel(axes[row][2], results, layers, wbar, grads, "‖∂L/∂W ⊙ m‖₂ (log; hatched 0 = exactly 0)",
                             f"{net}: masked gradient norm of its own loss")
        else:
            axes[row][2].axis("off")
    if has_bars:
        _bar_panels(axes[-1], results, labels)
    _legend_and_save(fig, plt, labels, title, path)
    return path
