"""Markdown table of every evaluation up to a step: one row per step, one column per (pruner, sparsity, seed).

    python docs/experiments/evals_by_step.py [--until=STEP] [--mean_from=STEP] [--only=LABEL,...] WORKDIR_OR_SUMMARY.json [...]

Compares runs of different lengths at equal steps (e.g. 50k-step runs on a 100k schedule against the
first half of the 100k runs). ``--only`` keeps the named labels ("dense", "random+erk", ...) at any
sparsity; a label may carry "@sparsity" ("random+erk@0.95"). ``--mean_from`` adds a last row: each
column's mean over its evaluations from that step on (IQL's scores swing between evaluations).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from score_table import label, summaries  # noqa: E402


def main(argv):
    until, only, mean_from, paths = None, None, None, []
    for a in argv:
        if a.startswith("--until="):
            until = int(a[len("--until="):])
        elif a.startswith("--mean_from="):
            mean_from = int(a[len("--mean_from="):])
        elif a.startswith("--only="):
            only = set(a[len("--only="):].split(","))
        else:
            paths.append(a)
    cols, table = [], {}
    for s in summaries(paths):
        for r in s["runs"]:
            lab, sp = label(r), float(r["sparsity"])
            if only is not None and lab not in only and f"{lab}@{sp:g}" not in only:
                continue
            col = f"{lab} {sp:g} s{r['seed']}" if sp else f"{lab} s{r['seed']}"
            cols.append(col)
            for e in r.get("evals", []):
                if until is None or e["step"] <= until:
                    table.setdefault(e["step"], {})[col] = e["normalized_score"]
    print("| step | " + " | ".join(cols) + " |")
    print("|---:|" + "---:|" * len(cols))
    for step in sorted(table):
        cells = [f"{table[step][c]:.1f}" if table[step].get(c) is not None else "" for c in cols]
        print(f"| {step:,} | " + " | ".join(cells) + " |")
    if mean_from is not None:
        means = []
        for c in cols:
            v = [table[t][c] for t in table if t >= mean_from and table[t].get(c) is not None]
            means.append(f"{sum(v) / len(v):.1f}" if v else "")
        print(f"| mean from {mean_from:,} | " + " | ".join(means) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
