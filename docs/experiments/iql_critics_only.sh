#!/usr/bin/env bash
# IQL with only its critics pruned (--prune_networks=critic,value), the recommendation for pruning IQL at init:
# random+ERK 95% against dense and against the narrow control is not possible in one job (narrow narrows every
# network), so dense and critics-pruned here, 5 seeds, 100k steps, the three datasets of the data-budget grid.
# Run from the repository root:   OUT=runs/iql_critics bash docs/experiments/iql_critics_only.sh
set -u
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/datasets}
PY=${PY:-python}
OUT=${OUT:-runs/iql_critics}
mkdir -p "$OUT"
$PY -m launch.sweep --algos=iql --pruners=dense,erk_random --prune_networks=critic,value --sparsities=0.95 \
    --seeds=0,1,2,3,4 --datasets=sb3/walker2d/expert-v0,sb3/hopper/expert-v0,sb3/hopper/medium-v0 \
    --steps=100000 --batch_size=256 --eval_every=5000 --eval_episodes=10 --checkpoint_every=5000 \
    --workdir="$OUT/iql_critics95" "$@" >> "$OUT/iql_critics95.log" 2>&1
echo "iql critics rc=$? $(date -u +%FT%T)"
