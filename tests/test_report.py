"""launch.report: PNGs and report.md from a tiny finished sweep, and from a single train workdir."""
import os

import pytest

from conftest import TINY_ID, minari_datasets, run_launcher
from sparse_orl import sweep as sw
from sparse_orl.algos import BCConfig
from sparse_orl.config import PruneConfig
from sparse_orl.report import data as report_data
from sparse_orl.report import make as reporting
from sparse_orl.report import stats
from sparse_orl.report.tables import score_table


@pytest.fixture(scope="module")
def finished_sweep(tiny_minari_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    with minari_datasets(tiny_minari_root, cwd=tmp):
        sweep = sw.SweepConfig(
            workdir=str(tmp / "sweep"), datasets=(TINY_ID,),
            agents=(BCConfig(vae_only=True, vae_hidden=(16,)),),
            prunes=(PruneConfig("dense"), PruneConfig("snip")), sparsities=(0.9, 0.95), seeds=(0, 1),
            steps=20, eval_every=10, checkpoint_every=20, eval_episodes=2, eval_max_episode_steps=8, batch_size=16,
            max_runs_per_program=3)  # 6 runs in 2 programs (the merged-workdirs test reports them separately)
        out = sw.run_sweep(sweep, log=lambda m: None)
        assert out["results"]
    return str(tmp / "sweep")


@pytest.mark.slow
def test_report_on_a_sweep_makes_pngs_and_tables(finished_sweep, tmp_path):
    out_dir = str(tmp_path / "rep")
    proc = run_launcher("launch.report", [f"--workdir={finished_sweep}", f"--out={out_dir}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pngs = sorted(os.listdir(out_dir))
    for kind in ("curves", "final_vs_sparsity", "layers", "storage", "score_vs_weights"):
        assert f"{kind}_bc-vae_test-hopper-launch-v0.png" in pngs, pngs
    for p in pngs:
        if p.endswith(".png"):
            with open(os.path.join(out_dir, p), "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(os.path.join(out_dir, p)) > 10_000
    md = open(os.path.join(out_dir, "report.md")).read()
    assert "## Scores" in md and "## Table 1: stored size at 95% sparsity" in md
    scores = md.split("## Scores")[1].split("\n## ")[0]
    score_rows = [l for l in scores.splitlines() if l.startswith("| BC (VAE only) | test/hopper/launch-v0 | ")
                  and "%" in l.split("|")[4]]
    assert [l.split("|")[3:6] for l in score_rows] == [[" dense ", " 0% ", " 2 "], [" SNIP ", " 90% ", " 2 "],
                                                      [" SNIP ", " 95% ", " 2 "]]
    for l in score_rows:  # mean ± std [95% interval] around the mean, within min..max of the seeds
        cells = [c.strip() for c in l.split("|")]
        mean = float(cells[7].split("±")[0])
        lo, hi = (float(x) for x in cells[7].split("[")[1].strip("]").split(","))
        assert float(cells[8]) <= lo <= mean <= hi <= float(cells[9])
    (vae_row,) = [l for l in md.splitlines() if l.startswith("| BC (VAE only) | test/hopper/launch-v0 | VAE |")]
    cells = [c.strip() for c in vae_row.split("|")]
    dense_mb, coo_mb, ours_mb = (float(c) for c in cells[6:9])
    assert ours_mb < dense_mb and cells[9].endswith("x") and cells[10].endswith("x")


@pytest.mark.slow
def test_report_on_a_single_train_workdir(finished_sweep, tmp_path):
    program = [p for p in sw.plan(sw.load_sweep(finished_sweep)) if "snip" in [c.pruner for c in p.config.prunes]][0]
    out = reporting.make_report(program.workdir, str(tmp_path / "single"), log=lambda m: None)
    assert len(out["pngs"]) == 5  # curves, final vs sparsity, score vs weights kept, layers, storage
    assert "Single experiment" in open(out["markdown"]).read()


def test_bootstrap_interval_and_one_seed():
    # 27 equally likely resamples of {1, 2, 3}; a mean of 1 (or of 3) has probability 1/27 > 2.5%: the
    # percentile interval is [1, 3]
    cell = stats.cell([1.0, 2.0, 3.0])
    assert (cell.n, cell.mean, cell.std, cell.low, cell.high) == (3, 2.0, 1.0, 1.0, 3.0)
    assert cell.text() == "2.0 ± 1.0 [1.0, 3.0]" and stats.cell([5.0]).text() == "5.0 (n = 1)"
    rows = [dict(algo="bc", algo_name="BC", data="d", dataset="d", pruner="snip", sparsity=0.9, seed=0, step=10,
                 normalized_score=50.0, **{"return": 1.0})]
    assert "| 50.0 (n = 1) |" in "\n".join(score_table(rows))


def test_difference_intervals_by_hand():
    # paired: per-seed differences 1..5, mean 3, sd sqrt(2.5), t(0.975, 4) = 2.776445
    a = {s: 10.0 for s in range(5)}
    b = {s: 11.0 + s for s in range(5)}
    d = stats.difference(a, b)
    half = 2.776445 * 2.5 ** 0.5 / 5 ** 0.5
    assert d.paired and d.mean == 3.0
    assert d.low == pytest.approx(3 - half, abs=1e-5) and d.high == pytest.approx(3 + half, abs=1e-5)
    assert d.detected and d.verdict("sparse", "narrow") == "sparse ahead (n = 5)"
    # a lead in 4 of 5 seeds that the t interval does not carry (the percentile bootstrap, [+3, +27], would)
    lead = stats.difference(a, {0: 26.5, 1: 40.0, 2: 10.9, 3: 39.6, 4: 8.9})
    assert lead.low < 0 < lead.high and lead.verdict("sparse", "narrow") == "no difference detected (n = 5)"
    # unpaired (different seeds): Welch, var 1/3 + 1/3 over n = 3 each, dof = 4
    w = stats.difference({0: 1.0, 1: 2.0, 2: 3.0}, {5: 2.0, 6: 3.0, 7: 4.0})
    half = 2.776445 * (2 / 3) ** 0.5
    assert not w.paired and w.low == pytest.approx(1 - half, abs=1e-5) and w.high == pytest.approx(1 + half, abs=1e-5)
    assert w.verdict("sparse", "narrow") == "no difference detected (n = 3)"
    assert stats.difference({0: 1.0}, {1: 2.0}).verdict("a", "b") == "not testable (n = 1)"
    assert stats.difference(a, {s: 9.0 for s in range(5)}).verdict("sparse", "narrow") == "narrow ahead (n = 5)"


def test_report_refuses_a_folder_without_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a sweep workdir"):
        reporting.make_report(str(tmp_path))


@pytest.mark.slow
def test_report_merges_program_workdirs_and_refuses_double_counting(finished_sweep, tmp_path):
    """The sweep's programs, given as separate workdirs, make the same report rows as the sweep."""
    progs = sorted(os.path.join(finished_sweep, "programs", d) for d in os.listdir(os.path.join(finished_sweep, "programs")))
    assert len(progs) == 2
    quiet = lambda m: None  # noqa: E731
    single = report_data.load_data(finished_sweep, log=quiet, sizes=False)
    merged = report_data.load_many(progs, log=quiet, sizes=False)
    key = lambda r: (r["pruner"], r["sparsity"], r["seed"], r["step"], r["normalized_score"])  # noqa: E731
    assert sorted(map(key, merged["rows"])) == sorted(map(key, single["rows"])) and len(single["rows"]) == 12
    out = reporting.make_report(progs, str(tmp_path / "merged"), log=quiet)
    md = open(out["markdown"]).read()
    assert "2 experiments" in md and "| SNIP | 95% | 2 |" in md
    cap = {str(single["info"]["eval_max_episode_steps"])}  # the programs share one episode cap (or none)
    assert merged["info"]["eval_max_episode_steps"] == (None if cap == {"None"} else cap.pop())
    assert "capped at None" not in md
    with pytest.raises(ValueError, match="is in both"):
        report_data.load_many([finished_sweep, progs[0]], log=quiet, sizes=False)
    with pytest.raises(ValueError, match="--out is required"):
        reporting.make_report(progs, None, log=quiet)


def test_merged_info_says_none_not_the_string_none(monkeypatch):
    infos = {"a": {"steps": 100, "eval_max_episode_steps": None}, "b": {"steps": 100, "eval_max_episode_steps": None},
             "c": {"steps": 200, "eval_max_episode_steps": 8}}
    monkeypatch.setattr(report_data, "load_data", lambda w, log, sizes: dict(
        rows=[], diverged=[], layers=[], sizes=[], unfinished=[], networks={}, info=infos[w]))
    assert report_data.load_many(["a", "b"])["info"] == {"steps": "100", "eval_max_episode_steps": None}
    assert report_data.load_many(["a", "c"])["info"] == {"steps": "100 / 200", "eval_max_episode_steps": "8 / none"}


def test_widened_rows_keep_the_narrow_control_as_the_reference():
    def row(pruner, sparsity, seed, score, width, kept):
        return report_data.with_setting(dict(
            algo="td3bc", algo_name="TD3+BC", dataset="d", max_transitions=None, pruner=pruner, sparsity=sparsity,
            seed=seed, step=10, normalized_score=score, width_multiplier=width, weights_kept=kept,
            **{"return": score}))
    rows = [row("narrow", 0.987, s, 50.0 + s, 2.0, 1000) for s in range(3)]
    rows += [row("erk_random", 0.987, s, 60.0 + s, 2.0, 1010) for s in range(3)]
    rows += [row("dense", 0.0, s, 40.0, 2.0, 80000) for s in range(3)]
    assert {r["pruner"] for r in rows} == {"narrow", "erk_random ×2", "dense ×2"}
    from sparse_orl.report.tables import verdict_table
    table = verdict_table(rows)
    assert len(table) == 3 and "| erk_random ×2 |" in table[2]  # one sparse row; dense ×2 is not one
    assert "| +10.0 [+10.0, +10.0] | sparse ahead (n = 3) |" in table[2]
    assert report_data.pruner_name("synflow ×2") == "SynFlow ×2"
    assert report_data.pruner_name("snip+acting ×4") == "SNIP+acting ×4"


def test_aggregate_table_iqm_over_datasets():
    def row(dataset, seed, score, pruner="dense"):
        return report_data.with_setting(dict(
            algo="td3bc", algo_name="TD3+BC", dataset=dataset, max_transitions=10000, pruner=pruner, sparsity=0.0,
            seed=seed, step=10, normalized_score=score, width_multiplier=1.0, **{"return": score}))
    rows = [row("a", s, float(s)) for s in range(4)] + [row("b", s, 10.0 + s) for s in range(4)]
    rows += [row("a", 0, 5.0, pruner="snip")]  # one dataset only: not aggregated; on "a" only seed 0 is common
    from sparse_orl.report.tables import aggregate_table
    table = aggregate_table(rows)
    # "a" counts seed 0 only (the seeds every configuration on "a" has): pooled 0 10 11 12 13, IQM = the
    # mean of the middle half, scipy's trim_mean(0.25) drops one value each side: (10 + 11 + 12) / 3 = 11
    assert len(table) == 3 and table[2].startswith("| TD3+BC | 10k transitions | dense | 0% | 2 | 5 | 11.0 [")
