"""The score and speed tables of docs/results.md and docs/results/*.md, recomputed from the stored summaries.

    python docs/experiments/results_tables.py [TABLE ...]     # default: every table
    tables: vae_bc, narrow_vae_bc, td3bc, iql, iql_which_network, bcq, peers, speed, verdict

One statistic everywhere: the score of a run is the mean of its last three evaluations (D4RL-normalized,
10 episodes each); a cell is the mean ± sample std (ddof=1) of that over seeds, [n] = seeds. Where the runs
of one table were evaluated at different intervals, every run is read at the same steps: VAE-only BC on
halfcheetah at 10k, 20k and 30k (most of its runs were evaluated only there).

Speed is run-steps per second of a program: its per-run steps/s (``train_steps_per_s``, measured while it
trained) times its number of runs. On a CPU a program takes its runs in turn, so per-run speed falls as
1/runs and only run-steps/s compares programs of different sizes.

"verdict": for each (algorithm, dataset, level) cell, the best sparse method (highest mean) against the
narrow dense network with the same kernel-weight count: difference of means and Welch's t-test p-value
(scipy). Standard library + scipy; reads docs/results/ relative to this file.
"""
import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(os.path.dirname(HERE), "results")
HC_STEPS = (10000, 20000, 30000)


def load(rel):
    with open(os.path.join(RES, rel)) as f:
        return json.load(f)


def label(r):
    return "dense" if float(r["sparsity"]) == 0.0 else r["pruner"]


def runs(*rels):
    """Runs of the given summaries: (label, sparsity, seed, {step: score}, per-run steps/s, runs in its program)."""
    out = []
    for rel in rels:
        s = load(rel)
        sizes = {}
        for r in s["runs"]:
            sizes[r.get("program", "main")] = sizes.get(r.get("program", "main"), 0) + 1
        for r in s["runs"]:
            ev = {e["step"]: e["normalized_score"] for e in r.get("evals", []) if e.get("normalized_score") is not None}
            out.append(dict(label=label(r), sparsity=float(r["sparsity"]), seed=r["seed"], evals=ev,
                            sps=r.get("train_steps_per_s"), nprog=sizes[r.get("program", "main")], src=rel))
    return out


def score(run, steps=None):
    ev = run["evals"]
    keys = [k for k in sorted(ev) if steps is None or k in steps]
    if steps is not None and len(keys) != len(steps):
        raise ValueError(f"{run['src']}: {run['label']} seed {run['seed']} lacks an evaluation at {steps}")
    return statistics.mean(ev[k] for k in keys[-3:])


def pick(rs, lab, sp):
    return [r for r in rs if r["label"] == lab and abs(r["sparsity"] - sp) < 1e-9]


def values(rs, lab, sp, steps=None):
    return [score(r, steps) for r in sorted(pick(rs, lab, sp), key=lambda r: r["seed"])]


def cell(v, seeds=False):
    if not v:
        return "–"
    s = f"{statistics.mean(v):.1f}"
    s += f" ± {statistics.stdev(v):.1f}" if len(v) > 1 else " [1]"
    if seeds:
        s += " (" + ", ".join(f"{x:.1f}" for x in v) + ")"
    return s


def table(head, rows):
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


# ---------------------------------------------------------------- sources
VAE_HC = ["vae_bc/bcvae_snip_summary.json", "vae_bc/bcvae_grasp_random_summary.json",
          "vae_bc/bcvae_base95_seed2_summary.json", "vae_bc/random_erk95_30k_summary.json",
          "vae_bc/synflow95_30k_summary.json", "narrow_control/summaries/hc_narrow95.json",
          "narrow_control/summaries/hc_erk_narrow90_98.json"]
VAE_WK = ["narrow_control/summaries/" + f for f in
          ("wk_dense_erk95.json", "wk_narrow95.json", "wk_snip_synflow95.json", "wk_erk_narrow90_98.json")]
VAE_HP = ["narrow_control/summaries/" + f for f in
          ("hp_dense_erk95.json", "hp_narrow95.json", "hp_snip_synflow95.json", "hp_erk_narrow90_98.json")]
TD3 = {env: ["td3bc_iql/summaries/td3bc_%s_dense.json" % env] for env in ("walker2d", "halfcheetah", "hopper")}
TD3["walker2d"] += ["td3bc_iql/summaries/td3bc_walker2d_%s.json" % k for k in ("prune95", "prune90_98", "grasp_random95")]
TD3["halfcheetah"] += ["td3bc_iql/summaries/td3bc_halfcheetah_prune95.json"]
TD3["hopper"] += ["td3bc_iql/summaries/td3bc_hopper_prune95.json"]
IQL = {env: ["td3bc_iql/summaries/iql_%s_dense.json" % env] for env in ("walker2d", "halfcheetah", "hopper")}
IQL["walker2d"] += ["td3bc_iql/summaries/iql_walker2d_%s.json" % k for k in ("prune90", "prune95", "prune98", "grasp_random95")]
IQL["halfcheetah"] += ["td3bc_iql/summaries/iql_halfcheetah_prune95.json"]
IQL["hopper"] += ["td3bc_iql/summaries/iql_hopper_prune95.json"]
BCQ = {"walker2d": ["narrow_control/summaries/bcq_wk_95.json"], "hopper": ["narrow_control/summaries/bcq_hp_95.json"]}
SPARSE = ("synflow", "random+erk", "snip", "grasp", "random")
NAMES = {"synflow": "SynFlow", "random+erk": "random+ERK", "snip": "SNIP", "grasp": "GraSP", "random": "random, global",
         "narrow": "narrow dense, same weights", "dense": "dense"}


def vae_sets():
    return {"halfcheetah": (runs(*VAE_HC), HC_STEPS), "walker2d": (runs(*VAE_WK), None), "hopper": (runs(*VAE_HP), None)}


# ---------------------------------------------------------------- tables
def t_vae_bc():
    rs, st = vae_sets()["halfcheetah"]
    print("VAE-only BC, halfcheetah expert, 30k steps; mean of the 10k, 20k and 30k evaluations per run\n")
    rows = [["dense", cell(values(rs, "dense", 0.0, st), True), "", ""]]
    for lab in ("snip", "grasp", "random", "random+erk", "synflow", "narrow"):
        rows.append([NAMES[lab]] + [cell(values(rs, lab, sp, st), True) for sp in (0.9, 0.95, 0.98)])
    table(["method", "90%", "95%", "98%"], rows)
    print("at 30k itself (the last evaluation), per seed:")
    for lab, sp in (("dense", 0.0), ("random+erk", 0.95), ("synflow", 0.95), ("narrow", 0.95), ("snip", 0.95)):
        runs = sorted(pick(rs, lab, sp), key=lambda r: r["seed"])
        print(f"  {lab} {sp}: " + ", ".join(f"{r['evals'][30000]:.1f}" for r in runs))
    early = runs("vae_bc/random_erk98_30k_summary.json")[0]
    print(f"  random+erk 0.98, the first seed-0 run (vae_bc/random_erk98_30k_summary.json): "
          f"{score(early, HC_STEPS):.1f} (10k-30k mean), {early['evals'][30000]:.1f} at 30k\n")


def t_narrow_vae_bc():
    sets = vae_sets()
    cols = [("dense", 0.0), ("random+erk", 0.9), ("narrow", 0.9), ("random+erk", 0.95), ("narrow", 0.95),
            ("synflow", 0.95), ("snip", 0.95), ("random+erk", 0.98), ("narrow", 0.98)]
    print("VAE-only BC, mean of the last three evaluations (halfcheetah: 10k, 20k, 30k)\n")
    rows = []
    for env, steps in (("halfcheetah", "30k"), ("walker2d", "30k"), ("hopper", "50k")):
        rs, st = sets[env]
        rows.append([f"{env} ({steps})"] + [cell(values(rs, lab, sp, st)) for lab, sp in cols])
    table(["dataset"] + [("dense" if lab == "dense" else f"{lab} {sp:.0%}") for lab, sp in cols], rows)


def _prune_table(sets, title, levels):
    for env, files in sets.items():
        rs = runs(*files)
        d = values(rs, "dense", 0.0)
        print(f"{title}, {env}: dense {cell(d, True)}\n")
        rows = []
        for lab in SPARSE + ("narrow",):
            cells = [cell(values(rs, lab, sp), True) for sp in levels]
            if any(c != "–" for c in cells):
                rows.append([NAMES[lab]] + cells)
        table(["method"] + [f"{sp:.0%}" for sp in levels], rows)


def t_td3bc():
    _prune_table(TD3, "TD3+BC, 100k steps", (0.9, 0.95, 0.98))


def t_iql():
    _prune_table(IQL, "IQL, 100k steps", (0.9, 0.95, 0.98))
    rs = runs("td3bc_iql/summaries/iql_walker2d_torchinit95_50k.json")
    print("IQL walker2d --init=torch (50k-step runs, so the actor's cosine decay spans 50k, not 100k):")
    for lab in ("random+erk", "synflow"):
        print(f"  {lab} 95%: {cell(values(rs, lab, 0.95), True)}")
    print()


def t_iql_which_network():
    rs = runs("td3bc_iql/summaries/iql_walker2d_dense.json", "td3bc_iql/summaries/iql_walker2d_prune95.json",
              "td3bc_iql/summaries/iql_walker2d_only_actor95_50k.json",
              "td3bc_iql/summaries/iql_walker2d_only_critics95_50k.json")
    st = (40000, 45000, 50000)
    print("IQL walker2d, random+ERK 95%, the same 100k schedule read at 40k, 45k, 50k (mean per seed)\n")
    rows = []
    for lab, name in (("dense", "none (dense)"), ("random+erk", "all three"), ("random+erk+only-actor", "the actor only"),
                      ("random+erk+only-critic-value", "the critic and value only")):
        sp = 0.0 if lab == "dense" else 0.95
        rows.append([name, cell(values(rs, lab, sp, st), True)])
    table(["networks pruned at 95%", "mean of 40k-50k"], rows)


def t_bcq():
    for env, files in BCQ.items():
        rs = runs(*files)
        print(f"BCQ, {env} expert, 20k steps (last three: 16k, 18k, 20k)\n")
        table(["configuration", "score"], [[NAMES[lab], cell(values(rs, lab, 0.0 if lab == "dense" else 0.95), True)]
                                            for lab in ("dense", "random+erk", "snip", "narrow")])


def t_peers():
    print("d3rlpy 2.8.1, seed 0: mean of its last three evaluations (every 5k steps)\n")
    rows = []
    for rel in ("td3bc_iql/peer/d3rlpy_td3bc_%s_s0.json", "td3bc_iql/peer/d3rlpy_iql_%s_s0.json"):
        for env in ("walker2d", "halfcheetah", "hopper"):
            d = load(rel % env)
            ev = [e["normalized_score"] for e in d["evals"]]
            rows.append([f"{d['algo']} {env}", f"{statistics.mean(ev[-3:]):.1f}", f"{ev[-1]:.1f}"])
    d = load("narrow_control/peer/d3rlpy_bcq_walker2d_s0.json")
    rows.append(["bcq walker2d (20k)", f"{statistics.mean(e['normalized_score'] for e in d['evals'][-3:]):.1f}",
                 " / ".join(f"{e['normalized_score']:.1f}" for e in d["evals"])])
    table(["algorithm, dataset", "last three", "final (bcq: every evaluation, 5k-20k)"], rows)


def _programs():
    """(algorithm, dataset, level, sparse run-steps/s, its runs, narrow run-steps/s, its runs) of every stored
    workdir that trained a narrow program beside a sparse one."""
    files = ["td3bc_iql/summaries/%s.json" % k for k in (
        "td3bc_walker2d_prune95", "td3bc_walker2d_prune90_98", "td3bc_halfcheetah_prune95", "td3bc_hopper_prune95",
        "iql_walker2d_prune90", "iql_walker2d_prune95", "iql_walker2d_prune98", "iql_halfcheetah_prune95",
        "iql_hopper_prune95")]
    files += ["narrow_control/summaries/%s.json" % k for k in (
        "bcq_wk_95", "bcq_hp_95", "hc_erk_narrow90_98", "wk_erk_narrow90_98", "hp_erk_narrow90_98")]
    out = []
    for rel in files:
        s = load(rel)
        algo = s["config"]["agent"]["algo"] + ("-vae" if s["config"]["agent"].get("vae_only") else "")
        env = s["config"]["dataset"].split("/")[1]
        rs = runs(rel)
        main = [r for r in rs if r["label"] != "narrow"]
        for sp in sorted({r["sparsity"] for r in rs if r["label"] == "narrow"}):
            nar = pick(rs, "narrow", sp)
            out.append((algo, env, sp, main[0]["sps"] * main[0]["nprog"], main[0]["nprog"],
                        nar[0]["sps"] * nar[0]["nprog"], nar[0]["nprog"], main[0]["sps"], nar[0]["sps"]))
    return out


def t_speed():
    print("Run-steps/s of the sparse program and of the narrow program trained beside it (one core each)\n")
    rows = []
    for algo, env, sp, a, na, b, nb, pa, pb in _programs():
        rows.append([algo, env, f"{sp:.0%}", f"{a:,.0f} ({na} runs × {pa:,.1f})", f"{b:,.0f} ({nb} runs × {pb:,.0f})",
                     f"{b / a:.1f}x", f"{pb / pa:.0f}x"])
    table(["algorithm", "dataset", "level", "sparse program", "narrow program", "narrow / sparse, per run-step",
           "per run (not comparable)"], rows)
    by = {}
    for algo, _, _, a, _, b, _, _, _ in _programs():
        by.setdefault(algo, []).append(b / a)
    for algo, v in by.items():
        print(f"  {algo}: {min(v):.1f}-{max(v):.1f}x")
    print()


def _welch_p(a, b):
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def t_verdict():
    sets = vae_sets()
    cells = []
    for env, lv in (("halfcheetah", 0.9), ("walker2d", 0.9), ("hopper", 0.9), ("halfcheetah", 0.95), ("walker2d", 0.95),
                    ("hopper", 0.95), ("halfcheetah", 0.98), ("walker2d", 0.98), ("hopper", 0.98)):
        cells.append(("VAE-BC", env, lv) + sets[env])
    for name, sets2, grid in (("TD3+BC", TD3, {"walker2d": (0.9, 0.95, 0.98), "halfcheetah": (0.95,), "hopper": (0.95,)}),
                              ("IQL", IQL, {"walker2d": (0.9, 0.95, 0.98), "halfcheetah": (0.95,), "hopper": (0.95,)}),
                              ("BCQ", BCQ, {"walker2d": (0.95,), "hopper": (0.95,)})):
        for env, levels in grid.items():
            rs = runs(*sets2[env])
            for lv in levels:
                cells.append((name, env, lv, rs, None))
    rows, ps = [], []
    for algo, env, lv, rs, st in cells:
        dense = values(rs, "dense", 0.0, st)
        nar = values(rs, "narrow", lv, st)
        best = max((lab for lab in SPARSE if values(rs, lab, lv, st)), key=lambda lab: statistics.mean(values(rs, lab, lv, st)))
        sp = values(rs, best, lv, st)
        p = _welch_p(sp, nar)
        ps.append(p)
        rows.append([f"{algo}, {env}, {lv:.0%}", cell(dense), f"{NAMES[best]} {cell(sp)}", cell(nar),
                     f"{statistics.mean(sp) - statistics.mean(nar):+.1f}", f"{p:.2f}"])
    table(["cell", "dense", "best sparse", "narrow dense, same weights", "sparse − narrow", "Welch p"], rows)
    ok = [p for p in ps if not math.isnan(p)]
    print(f"cells: {len(ps)}; Welch p >= 0.09 in {sum(p >= 0.09 for p in ok)} of {len(ok)}; "
          f"p < 0.05 in {sum(p < 0.05 for p in ok)}; smallest p {min(ok):.3f}\n")


TABLES = {"vae_bc": t_vae_bc, "narrow_vae_bc": t_narrow_vae_bc, "td3bc": t_td3bc, "iql": t_iql,
          "iql_which_network": t_iql_which_network, "bcq": t_bcq, "peers": t_peers, "speed": t_speed,
          "verdict": t_verdict}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(TABLES):
        if name not in TABLES:
            raise SystemExit(f"results_tables.py: unknown table {name} (one of {', '.join(TABLES)})")
        print(f"## {name}\n")
        TABLES[name]()
