"""The equal-parameter dense control (--pruner=narrow): sizing, its own programs, labels, report."""
import json
import os

import pytest

from conftest import TINY_ID
from sparse_orl.algos import BCConfig, BCQConfig, make_algorithm
from sparse_orl.config import ExperimentConfig, PruneConfig
from sparse_orl.job import run_experiment
from sparse_orl.job.narrow import kernel_counts, narrow_config
from sparse_orl.report import make as reporting
from sparse_orl.store.summary import read_summary


@pytest.mark.parametrize("sparsity", [0.9, 0.95, 0.98])
def test_narrow_vae_matches_kept_weights_within_one_percent(sparsity):
    cfg, rec = narrow_config(BCConfig(vae_only=True), 17, 6, 1.0, sparsity)
    full = kernel_counts(BCConfig(vae_only=True), 17, 6, 1.0)["vae"]
    assert full == 1_186_500  # 23·750 + 750² + 2·750·12 + 29·750 + 750² + 750·6
    want = full - round(sparsity * full)
    net = rec["networks"]["vae"]
    assert net["target"] == want and net["kept"] == kernel_counts(cfg, 17, 6, 1.0)["vae"]
    assert abs(net["kept"] - want) / want < 0.01
    assert tuple(net["widths"]) == cfg.vae_hidden and len(cfg.vae_hidden) == 2
    if sparsity == 0.95:
        assert cfg.vae_hidden == (153, 153) and net["kept"] == 59_364  # 2·153² + 82·153


def test_narrow_bcq_scales_each_network_by_its_own_factor():
    cfg, rec = narrow_config(BCQConfig(), 17, 6, 1.0, 0.95)
    fields = {s.name: s.hidden_field for s in make_algorithm(BCQConfig(), 17, 6, 1.0).network_specs}
    assert set(fields) == set(rec["networks"]) == {"actor", "critic", "vae"}
    for name, field in fields.items():
        net = rec["networks"][name]
        assert abs(net["relative_difference"]) < 0.01 and tuple(net["widths"]) == getattr(cfg, field)
        assert len(getattr(cfg, field)) == 2
    assert cfg.actor_hidden != cfg.vae_hidden


@pytest.mark.slow
def test_narrow_runs_in_its_own_programs_labelled_and_reported(minari_env, tmp_path):
    wd = tmp_path / "wd"
    cfg = ExperimentConfig(dataset=TINY_ID, workdir=str(wd), agent=BCConfig(vae_only=True, vae_hidden=(64, 64)),
                           prunes=(PruneConfig("dense"), PruneConfig("erk_random"), PruneConfig("narrow")),
                           seeds=(0, 1), sparsities=(0.9,), steps=20, batch_size=16, eval_every=10,
                           eval_episodes=2, checkpoint_every=10, eval_max_episode_steps=8)
    summary = run_experiment(cfg, log=lambda _m: None)
    assert summary.complete
    # the narrow level in a program of its own (the dense runs may have one too: --sparse_format)
    assert sorted(os.listdir(wd / "programs")) == sorted(summary.programs) and \
        {"main", "narrow-0.9"} <= set(summary.programs)
    on_disk = read_summary(str(wd))
    assert on_disk.to_json() == summary.to_json()
    assert [(r.pruner, r.sparsity, r.seed) for r in on_disk.runs] == [
        ("dense", 0.0, 0), ("dense", 0.0, 1), ("erk_random", 0.9, 0), ("erk_random", 0.9, 1),
        ("narrow", 0.9, 0), ("narrow", 0.9, 1)]
    sparse_kept = on_disk.runs[2].masks["vae"]["kept"]
    for r in on_disk.runs[4:]:
        rec = r.narrow["networks"]["vae"]
        assert rec["target"] == sparse_kept  # the same weight count as the sparse run keeps
        assert r.masks["vae"]["kept"] == r.masks["vae"]["total"] == rec["kept"]  # dense, narrower
        assert r.program == "narrow-0.9" and r.train_steps_per_s > 0
        assert len(r.evals) == 2
    narrow_cfg = json.load(open(wd / "programs" / "narrow-0.9" / "config.json"))
    assert narrow_cfg["agent"]["vae_hidden"] == on_disk.runs[4].narrow["networks"]["vae"]["widths"]
    # a rerun finds everything complete
    again = run_experiment(cfg, log=lambda _m: None)
    assert again.to_json() == on_disk.to_json()
    out = tmp_path / "report"
    reporting.make_report(str(wd), str(out), log=lambda _m: None)
    pngs = sorted(p for p in os.listdir(out) if p.endswith(".png"))
    assert any(p.startswith("score_vs_weights_bc-vae") for p in pngs)
    md = open(out / "report.md").read()
    assert "## Training speed" in md and "narrow dense" in md


def test_narrow_takes_no_remedy_options():
    with pytest.raises(ValueError, match="narrow"):
        PruneConfig("narrow", allocation="erk")
    assert PruneConfig("narrow").label == "narrow" and not PruneConfig("narrow").is_dense
