"""The narrow control says so when it cannot match the sparse networks' kept weights within 1%: its record
carries a one-line "warning" (the job logs it); a control that matches carries none."""
import pytest

from sparse_orl.algos import BCConfig, BCQConfig
from sparse_orl.job.narrow import narrow_config


@pytest.mark.parametrize("sparsity", [0.9, 0.95])
def test_a_control_within_one_percent_has_no_warning(sparsity):
    _, rec = narrow_config(BCConfig(vae_only=True), 17, 6, 1.0, sparsity)
    assert "warning" not in rec
    _, rec = narrow_config(BCQConfig(), 17, 6, 1.0, sparsity)
    assert "warning" not in rec


def test_a_control_that_cannot_shrink_enough_warns_naming_network_counts_and_level():
    # a 32-32 VAE at 99.9%: the sparse network keeps a handful of weights, widths of 1 keep more
    cfg, rec = narrow_config(BCConfig(vae_only=True, vae_hidden=(32, 32)), 11, 3, 1.0, 0.999)
    net = rec["networks"]["vae"]
    assert net["widths"] == [1, 1] and net["kept"] > net["target"] * 1.01
    warning = rec["warning"]
    assert isinstance(warning, str) and "\n" not in warning
    assert "0.999" in warning and "within 1%" in warning
    assert f"vae keeps {net['kept']:,} weights against a target of {net['target']:,}" in warning


def test_a_target_of_zero_weights_is_named_without_a_percentage():
    """The case of the report: 31 weights kept against a target of 0 ("+inf%" would say nothing)."""
    _, rec = narrow_config(BCConfig(vae_only=True, vae_hidden=(8, 8)), 2, 1, 1.0, 0.999)
    net = rec["networks"]["vae"]
    assert net["target"] == 0 and net["kept"] > 0
    assert f"against a target of 0 at widths {net['widths']}" in rec["warning"]


def test_only_the_networks_that_miss_are_named():
    _, rec = narrow_config(BCQConfig(actor_hidden=(400, 300), critic_hidden=(400, 300), vae_hidden=(4, 4)),
                           17, 6, 1.0, 0.99)
    missed = [n for n, v in rec["networks"].items() if abs(v["kept"] - v["target"]) > 0.01 * v["target"]]
    assert missed == ["vae"], rec["networks"]
    assert "vae keeps" in rec["warning"] and "actor keeps" not in rec["warning"] and "critic keeps" not in rec["warning"]
