"""Collect the narrow-control launch.train workdirs into docs/results/narrow_control/ and build the merged report.

    python docs/experiments/narrow_control_collect.py [--out=FOLDER] [--no_report] WORKDIR|RUNS_DIR|SUMMARY.json [...]

Copies every finished (or partial) ``summary.json`` under the given folders (and the given
summary files, e.g. the HalfCheetah 30k runs in docs/results/vae_bc/) to
``docs/results/narrow_control/summaries/<workdir name>.json``, then writes the merged report
(PNGs + report.md) of just these into ``docs/results/narrow_control/report/`` (``--no_report``: copy only,
e.g. to add runs to a report built from more workdirs with ``launch.report``).

The first narrow-control runs were launched before ``--pruner=narrow`` existed, as dense runs
of the narrow widths (``--pruner=none --vae_hidden=153,153``; hopper 159,159). That is the same
computation: ``--pruner=narrow`` trains a dense program with these widths from the same seeds
(the narrow module of ``sparse_orl``). Workdirs named ``*_narrow<pct>`` are relabelled here as what they are:
pruner "narrow" at that sparsity, with the sizing record of ``narrow_config``.
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "docs", "results", "narrow_control")  # --out=FOLDER (first argument) to collect elsewhere


def relabel_narrow(name, summary):
    m = re.search(r"_narrow(\d+)$", name)
    if not m or any(r["pruner"] == "narrow" for r in summary["runs"]):
        return summary
    sys.path.insert(0, REPO)
    from sparse_orl.algos import config_from_dict
    from sparse_orl.data import load_dataset_info
    try:  # the module's place before and after the package restructuring
        from sparse_orl.job.narrow import narrow_config
    except ImportError:
        from sparse_orl.job.narrow import narrow_config

    level = int(m.group(1)) / 100
    agent = summary["config"]["agent"]
    full = dict(agent, vae_hidden=[750, 750], actor_hidden=[400, 300], critic_hidden=[400, 300])
    info = load_dataset_info(summary["config"]["dataset"])
    cfg, record = narrow_config(config_from_dict(full), info.obs_dim, info.act_dim, info.max_action, level)
    for net, rec in record["networks"].items():
        if list(agent[f"{net}_hidden"]) != rec["widths"]:
            raise ValueError(f"{name}: trained widths {agent[f'{net}_hidden']} are not narrow_config's {rec['widths']}")
    summary = dict(summary, runs=[dict(r, pruner="narrow", sparsity=level, narrow=record) for r in summary["runs"]])
    return summary


def current_names(summary):
    """The algorithm's (label, display name) as the current code names it (``AlgoConfig``)."""
    sys.path.insert(0, REPO)
    from sparse_orl.algos import config_from_dict

    cfg = config_from_dict(summary["config"]["agent"])
    return cfg.label, cfg.display_name


def speed_from_log(summary_path):
    """Median per-run steps/s of a workdir's progress lines (first chunk, which compiles, left out),
    for summaries written before launch.train recorded ``train_steps_per_s``."""
    log = os.path.dirname(summary_path) + ".log"
    if not os.path.exists(log):
        return None
    vals = [float(m.group(1)) for m in re.finditer(r"\| (\d+) steps/s per run", open(log).read())]
    return float(sorted(vals[1:])[len(vals[1:]) // 2]) if len(vals) > 1 else None


def main(dirs):
    global OUT
    report = True
    while dirs and dirs[0].startswith("--"):
        opt = dirs.pop(0)
        if opt.startswith("--out="):
            OUT = os.path.join(REPO, opt[len("--out="):])
        elif opt == "--no_report":
            report = False
        else:
            raise SystemExit(f"narrow_control_collect.py: unknown option {opt} (--out=FOLDER, --no_report)")
    sums = os.path.join(OUT, "summaries")
    os.makedirs(sums, exist_ok=True)
    work = []
    found = []
    for d in dirs:
        if d.endswith(".json"):
            found.append((os.path.basename(d)[:-len(".json")].replace("_summary", ""), d))
            continue
        if os.path.exists(os.path.join(d, "summary.json")):  # one workdir
            found.append((os.path.basename(os.path.normpath(d)), os.path.join(d, "summary.json")))
            continue
        for name in sorted(os.listdir(d)):
            if os.path.exists(os.path.join(d, name, "summary.json")):
                found.append((name, os.path.join(d, name, "summary.json")))
    for name, path in found:
        s = relabel_narrow(name, json.load(open(path)))
        s["algo_label"], s["algo_name"] = current_names(s)  # older summaries say "TD3BC": one name per report
        s["config"] = dict(s["config"], workdir=f"runs/{os.path.basename(OUT)}/{name}")  # no machine paths in docs/
        sps = speed_from_log(path)
        if sps is not None:
            s["runs"] = [dict(r, train_steps_per_s=r.get("train_steps_per_s") or sps) for r in s["runs"]]
        with open(os.path.join(sums, name + ".json"), "w") as f:
            json.dump(s, f, indent=1)
        wd = os.path.join(OUT, "workdirs", name)  # launch.report reads <workdir>/summary.json
        os.makedirs(wd, exist_ok=True)
        with open(os.path.join(wd, "summary.json"), "w") as f:
            json.dump(s, f)
        work.append(os.path.relpath(wd, REPO))
    if not report:
        return
    cmd = [sys.executable, "-m", "launch.report", "--workdir=" + ",".join(work),
           "--out=" + os.path.relpath(os.path.join(OUT, "report"), REPO)]
    subprocess.run(cmd, cwd=REPO, check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
