#!/usr/bin/env bash
# Sparse-Reg's own small-data regime: TD3+BC on the dataset's first 10k rows (--data_subset=first: whole
# episodes in file order, the same rows for every seed, as Sparse-Reg's code builds its buffer), dense, narrow
# dense with the weights of 95% and random+ERK 95%, 5 seeds x 100k steps, the protocol of data_budget_td3bc.sh.
# Datasets: the first argument (default: sb3/hopper/medium-v0, the cell where random+ERK led on a uniform 10k).
# PRUNERS narrows the methods, in a workdir of their own (the report merges workdirs by configuration). This
# round ran PRUNERS=narrow,erk_random (dense left for machine time; PRUNERS=none adds it beside them).
# Run from the repository root:   OUT=runs/data_budget bash docs/experiments/data_budget_first_rows.sh
set -u
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/datasets}
PY=${PY:-python}
OUT=${OUT:-runs/data_budget}
DATASETS=${1:-sb3/hopper/medium-v0}
PRUNERS=${PRUNERS:-none,narrow,erk_random}
mkdir -p "$OUT"
name=td3bc_first10000_${PRUNERS//,/-}
echo "$name start $(date -u +%FT%T)"
$PY -m launch.sweep --algos=td3bc --pruners="$PRUNERS" --sparsities=0.95 --seeds=0,1,2,3,4 \
    --datasets="$DATASETS" --max_transitions=10000 --data_subset=first \
    --steps=100000 --batch_size=256 --eval_every=5000 --eval_episodes=10 --checkpoint_every=5000 \
    --workdir="$OUT/$name" >> "$OUT/$name.log" 2>&1
echo "$name rc=$? $(date -u +%FT%T)"
