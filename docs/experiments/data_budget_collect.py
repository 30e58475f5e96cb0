"""Collect the data-budget / sparse-wide studies: one report over every sweep workdir found, and the summaries
of their finished programs stored beside it (the evidence behind docs/results/data_budget.md).

    python docs/experiments/data_budget_collect.py [RUNS=runs/data_budget,runs/sparse_wide] [OUT=docs/results/data_budget]

RUNS is a comma list of folders holding sweep workdirs (the data-budget sweeps, the extra seeds, the
sparse-wide sweeps); the report merges their runs by configuration.

Unfinished programs are left out and listed; re-run as the sweeps progress.
"""
import glob
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(runs="runs/data_budget,runs/sparse_wide", out="docs/results/data_budget"):
    sweeps = sorted(d for root in runs.split(",") for d in glob.glob(os.path.join(root, "*"))
                    if os.path.exists(os.path.join(d, "sweep.json")))
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
                with open(s) as f:  # folders relative to the repository, not as they lie on this machine
                    text = f.read().replace(REPO + os.sep, "")
                with open(os.path.join(store, name), "w") as f:
                    f.write(text)
                kept.append(sw)
    with_results = sorted(set(kept))
    cmd = [sys.executable, "-m", "launch.report", "--workdir=" + ",".join(with_results),
           "--out=" + os.path.join(out, "report")]
    if len(with_results) == 1:
        cmd[3] = "--workdir=" + with_results[0]
    print(" ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=REPO)
    # the stored report names folders relative to the repository, not as they lie on this machine
    report = os.path.join(out, "report", "report.md")
    if rc == 0 and os.path.exists(report):
        with open(report) as f:
            text = f.read()
        with open(report, "w") as f:
            f.write(text.replace(REPO + os.sep, ""))
    return rc


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
