"""Markdown table of final scores from launch.train summaries: one row per (dataset, pruner, sparsity).

    python docs/experiments/score_table.py WORKDIR_OR_SUMMARY.json [...]

Columns: seeds; the score, the mean of each run's last three evaluations (mean ± sample std over seeds,
then the seeds' values; the statistic of docs/results.md); the step of the last evaluation; and the
run-steps/s of the program the runs trained in (per-run ``train_steps_per_s`` × the program's runs). Runs
of the narrow control are read from the merged summary (``pruner == "narrow"``); dense runs are labelled
dense. Unfinished runs are shown at the step they reached. For the tables of docs/results.md, with runs
read at shared steps, see results_tables.py.
"""
import json
import os
import statistics
import sys


def summaries(paths):
    for p in paths:
        f = p if p.endswith(".json") else os.path.join(p, "summary.json")
        if os.path.exists(f):
            yield json.load(open(f))


def label(r):
    return "dense" if float(r["sparsity"]) == 0.0 else r["pruner"]


def main(paths):
    rows = {}
    for s in summaries(paths):
        ds = s["config"]["dataset"].split("/")[1] if "/" in s["config"]["dataset"] else s["config"]["dataset"]
        sizes = {}
        for r in s["runs"]:
            sizes[r.get("program", "")] = sizes.get(r.get("program", ""), 0) + 1
        for r in s["runs"]:
            ev = [e for e in r.get("evals", []) if e.get("normalized_score") is not None]
            if not ev:
                continue
            key = (s["config"]["agent"]["algo"] + ("-vae" if s["config"]["agent"].get("vae_only") else ""), ds,
                   label(r), float(r["sparsity"]))
            sps = r.get("train_steps_per_s")
            rows.setdefault(key, []).append((r["seed"], ev, sps * sizes[r.get("program", "")] if sps else None))
    print("| algo | dataset | network | sparsity | seeds | score: mean of the last 3 evaluations [seeds] | step "
          "| run-steps/s of its program |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for (algo, ds, lab, sp), runs in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][3], kv[0][2])):
        runs = sorted(runs, key=lambda x: x[0])
        last3 = [statistics.mean(e["normalized_score"] for e in ev[-3:]) for _, ev, _ in runs]
        steps = sorted({ev[-1]["step"] for _, ev, _ in runs})
        sd = f" ± {statistics.stdev(last3):.1f}" if len(last3) > 1 else ""
        speed = [x for _, _, x in runs if x]
        print(f"| {algo} | {ds} | {lab} | {sp:g} | {len(runs)} | {statistics.mean(last3):.1f}{sd} "
              f"({', '.join(f'{x:.1f}' for x in last3)}) | "
              f"{'/'.join(f'{x:,}' for x in steps)} | {f'{statistics.mean(speed):,.0f}' if speed else ''} |")


if __name__ == "__main__":
    main(sys.argv[1:])
