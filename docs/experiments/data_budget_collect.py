"""Collect the data-budget / sparse-wide studies: one report over every sweep workdir found, and the summaries
of their finished programs stored beside it (the evidence behind docs/results/data_budget.md).

    python docs/experiments/data_budget_collect.py [RUNS=runs/data_budget] [OUT=docs/results/data_budget]

Unfinished programs are left out and listed; re-run as the sweeps progress.
"""
import glob
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(runs="runs/data_budget", out="docs/results/data_budget"):
    sweeps = sorted(d for d in glob.glob(os.path.join(runs, "*")) if os.path.exists(os.path.join(d, "sweep.json")))
    if not sweeps:
        sys.exit(f"no sweep workdirs under {runs}")
    store = os.path.join(out, "summaries")
    os.makedirs(store, exist_ok=True)
    kept = []
    for sw in sweeps:
        for prog in sorted(glob.glob(os.path.join(sw, "programs", "*"))):
            s = os.path.join(prog, "summary.json")
            if os.path.exists(s):
                name = f"{os.path.basename(sw)}__{os.path.basename(prog)}.json"
                shutil.copyfile(s, os.path.join(store, name))
                kept.append(sw)
    with_results = sorted(set(kept))
    cmd = [sys.executable, "-m", "launch.report", "--workdir=" + ",".join(with_results),
           "--out=" + os.path.join(out, "report")]
    if len(with_results) == 1:
        cmd[3] = "--workdir=" + with_results[0]
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=REPO)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
