"""fp32 vs bf16 (VAE-only BC, halfcheetah expert): normalized score per seed at 10k/20k/30k steps.

fp32 workdirs (the VAE-only BC runs of docs/results/vae_bc.md: same seeds, same init and data order)
vs the bf16 workdir; the argument is the folder holding them (workdirs not stored; output: bf16_compare.md).
    python docs/results/speed/bf16_compare.py runs
"""
import json
import statistics
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "runs"


def runs(wd):
    s = json.load(open(f"{root}/{wd}/summary.json"))
    return [(r["pruner"], r["sparsity"], r["seed"], {e["step"]: e["normalized_score"] for e in r["evals"]})
            for r in s["runs"]]


fp32, bf16 = {}, {}
for wd in ("bcvae_snip", "i5_base95_s2", "i5_random_erk95"):
    for p, sp, seed, ev in runs(wd):
        if sp == 0.0 or p == "none":
            fp32[("dense", seed)] = ev
        elif p == "random+erk" and sp == 0.95:
            fp32[("random+erk 95%", seed)] = ev
for p, sp, seed, ev in runs("i4_bf16"):
    bf16[("dense" if sp == 0.0 else "random+erk 95%", seed)] = ev
print("| method | seed | fp32 10k / 20k / 30k | bf16 10k / 20k / 30k | 30k: bf16 − fp32 |")
print("|---|---|---|---|---:|")
for k in sorted(bf16):
    a, b = fp32.get(k, {}), bf16[k]
    f = lambda ev: " / ".join(f"{ev[s]:.1f}" if s in ev else "–" for s in (10000, 20000, 30000))
    d = b[30000] - a[30000] if 30000 in a and 30000 in b else float("nan")
    print(f"| {k[0]} | {k[1]} | {f(a)} | {f(b)} | {d:+.1f} |")
for m in ("dense", "random+erk 95%"):
    for name, src in (("fp32", fp32), ("bf16", bf16)):
        v = [src[(m, s)][30000] for s in (0, 1, 2) if (m, s) in src and 30000 in src[(m, s)]]
        if len(v) > 1:
            print(f"{m} {name} 30k: {statistics.mean(v):.1f} ± {statistics.stdev(v):.1f} (n={len(v)})")
