"""The report's figures, drawn from tiny synthetic rows: what each PNG says matches what it draws (no band
named with one seed, zeros marked, legends off the data, a storage axis with room and ticks below its
smallest value, colours that read on white)."""
import matplotlib
import numpy as np
import pytest
from matplotlib import colors as mcolors

from sparse_orl.report import diagnostics, figure, network_plots, plots

ALGO = dict(algo="bc", algo_name="BC", data="tiny.hdf5", dataset="tiny.hdf5", max_transitions=None)


def _contrast_on_white(color) -> float:
    """WCAG contrast ratio of ``color`` against white."""
    def channel(x):
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(x) for x in mcolors.to_rgb(color))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions draw (kept open: ``plt.close`` is recorded instead)."""
    plt = figure.pyplot()
    close, drawn = plt.close, []
    monkeypatch.setattr(plt, "close", drawn.append)
    yield drawn
    for fig in drawn:
        close(fig)


def _curve_rows(seeds=(0,), levels=(0.9, 0.95, 0.99), pruners=("snip", "random+erk")):
    rows = []
    for seed in seeds:
        for step in (20, 40, 60):
            rows.append(dict(ALGO, pruner="dense", sparsity=0.0, seed=seed, step=step,
                             normalized_score=50.0 + seed, weights_kept=8000, **{"return": 100.0}))
            for p in pruners:
                for s in levels:
                    rows.append(dict(ALGO, pruner=p, sparsity=s, seed=seed, step=step, weights_kept=int(8000 * (1 - s)),
                                     normalized_score=40.0 - 10 * s + seed + step / 100, **{"return": 90.0}))
    return rows


def _titles(fig):
    return " ".join([fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes])


def test_every_colour_reads_on_white():
    for c in figure.PALETTE:
        assert _contrast_on_white(c) >= 3.0, c
    cmap = matplotlib.colormaps[figure.LEVEL_CMAP]
    for x in np.linspace(0, figure.LEVEL_CMAP_MAX, 7):
        assert _contrast_on_white(cmap(x)) >= 3.0, x


@pytest.mark.parametrize("seeds", [(0,), (0, 1)])
def test_curves_and_finals_say_no_band_with_one_seed(tmp_path, figures, seeds):
    rows = _curve_rows(seeds)
    plots.plot_curves(rows, str(tmp_path))
    plots.plot_final_vs_sparsity(rows, str(tmp_path))
    plots.plot_score_vs_weights(rows, str(tmp_path))
    assert len(figures) == 3
    for fig in figures:
        text = _titles(fig)
        bands = sum(len(ax.collections) for ax in fig.axes)  # fill_between / axhspan draw collections
        if len(seeds) == 1:
            assert "1 seed, no band" in text or "1 seed each, no interval" in text, text
            assert "band =" not in text and "interval of the mean" not in text, text
        else:
            assert "no band" not in text and bands > 0, text
    curves = figures[0]
    if len(seeds) == 1:
        assert sum(len(ax.collections) for ax in curves.axes) == 0
    # small step counts are labelled as steps, not "0.02k"
    curves.canvas.draw()
    labels = [t.get_text() for t in curves.axes[0].get_xticklabels()]
    assert labels and not any(lab.endswith("k") for lab in labels if lab not in ("", "0")), labels


def test_sparsity_levels_stop_before_viridis_yellow(tmp_path, figures):
    plots.plot_curves(_curve_rows(levels=(0.8, 0.9, 0.95, 0.98, 0.99)), str(tmp_path))
    for line in figures[0].axes[0].get_lines():
        assert _contrast_on_white(line.get_color()) >= 3.0, line.get_label()


def _size_rows():
    rows = []
    for net, dense in (("actor", 6540.0), ("vae", 14700.0)):
        for s, compact, coo in ((0.9, 1200.0, 8000.0), (0.99, 540.0, 5200.0)):
            rows.append(dict(ALGO, pruner="snip", net=net, sparsity=s, dense=dense, coo=coo, compact=compact,
                             bitmap=compact, gap8=compact, kept=10, weights=100, params=120))
    return rows


def test_storage_axis_has_room_and_a_tick_below_the_smallest_value(tmp_path, figures):
    network_plots.plot_storage(_size_rows(), str(tmp_path), {"actor": "actor", "vae": "VAE"})
    fig = figures[0]
    fig.canvas.draw()
    for ax in fig.axes:
        ys = [y for line in ax.get_lines() for y in np.atleast_1d(line.get_ydata())]
        lo, hi = ax.get_ylim()
        assert lo < min(ys) / 1.1 and hi > max(ys) * 1.1, (lo, hi, ys)  # no point on an edge
        ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
        assert any(t < min(ys) for t in ticks) and any(t > max(ys) for t in ticks), (ticks, ys)
        assert ax.get_legend() is None  # one legend for the figure, below the panels
    assert len(fig.legends) == 1


def _diag(density, width, grads):
    layers = {f"l{i + 1}": {"kept": int(d * 100), "total": 100, "density": d} for i, d in enumerate(density)}
    units = {"l1": {"units": 8, "effective_width": width, "dead": 8 - width, "alive": width, "no_in": 0,
                    "no_out": 0}}
    return {"networks": {"actor": {"density": layers, "units": {"layers": units, "inputs": {}}}},
            "grad_norms": {"actor": {f"l{i + 1}": g for i, g in enumerate(grads)}}}


def test_diagnostics_legend_outside_and_zeros_marked(tmp_path, figures):
    results = [("dense", _diag([1.0, 1.0], 8, [0.3, 0.2])), ("snip 0.99", _diag([0.0, 0.05], 0, [0.0, 0.01]))]
    diagnostics.plot_diagnostics(results, str(tmp_path / "d.png"), "title")
    fig = figures[0]
    fig.canvas.draw()
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    legend_box = fig.legends[0].get_window_extent()
    for ax in fig.axes:
        if ax.get_visible() and ax.axison:
            assert not legend_box.overlaps(ax.get_window_extent()), ax.get_title()
    density, width, grad = fig.axes[:3]
    for ax in (density, grad):
        hatched = [p for p in ax.patches if p.get_hatch()]
        assert len(hatched) == 1, ax.get_title()  # the one exact 0 of each panel
        assert hatched[0].get_height() > 0 and hatched[0].get_height() < 1e-2  # below every real value
        assert "0" in [t.get_text() for t in ax.texts]
        assert "0" in ax.get_ylabel() and "hatched" in ax.get_ylabel()
    assert "0" in [t.get_text() for t in width.texts]  # no unit left: a "0" where no bar can be seen
    # zero gradient norms are drawn a decade below the smallest real one, not at 1e-12
    g_hatched = next(p for p in grad.patches if p.get_hatch())
    assert g_hatched.get_height() == pytest.approx(0.001)
