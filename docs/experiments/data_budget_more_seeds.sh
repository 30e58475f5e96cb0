#!/usr/bin/env bash
# Five more seeds (5-9) for the one cell of the data-budget study where a sparse network led the narrow dense
# network with the same weights at n = 5 (TD3+BC, sb3/hopper/medium-v0, 10k transitions, random+ERK 95%): dense,
# narrow and random+ERK with the protocol of data_budget_td3bc.sh, in a workdir of their own; the report merges
# them with seeds 0-4 by configuration. Run from the repository root:
#   OUT=runs/data_budget bash docs/experiments/data_budget_more_seeds.sh
set -u
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/datasets}
PY=${PY:-python}
OUT=${OUT:-runs/data_budget}
mkdir -p "$OUT"
name=td3bc_10000_seeds5-9
echo "$name start $(date -u +%FT%T)"
$PY -m launch.sweep --algos=td3bc --pruners=none,narrow,erk_random --sparsities=0.95 --seeds=5,6,7,8,9 \
    --datasets=sb3/hopper/medium-v0 --max_transitions=10000 \
    --steps=100000 --batch_size=256 --eval_every=5000 --eval_episodes=10 --checkpoint_every=5000 \
    --workdir="$OUT/$name" "$@" >> "$OUT/$name.log" 2>&1
echo "$name rc=$? $(date -u +%FT%T)"
