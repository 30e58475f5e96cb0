#!/usr/bin/env bash
# Where does sparse pay? VAE-only BC at 95%: dense, narrow dense (same weights) and random+ERK, on the three
# datasets of the TD3+BC grid, at data budgets of 10k / 50k transitions and the whole dataset; 5 seeds, 30k steps.
# Run from the repository root:   OUT=runs/data_budget bash docs/experiments/data_budget_vae_bc.sh
set -u
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/datasets}
PY=${PY:-python}
OUT=${OUT:-runs/data_budget}
mkdir -p "$OUT"
COMMON=(--algos=bc --bc_vae_only --pruners=dense,narrow,erk_random --sparsities=0.95 --seeds=0,1,2,3,4
        --datasets=sb3/walker2d/expert-v0,sb3/hopper/expert-v0,sb3/hopper/medium-v0
        --steps=30000 --eval_every=5000 --eval_episodes=10 --checkpoint_every=5000)
for budget in 10000 50000 all; do
  extra=(); [ "$budget" = all ] || extra=(--max_transitions=$budget)
  echo "vae_bc budget $budget start $(date -u +%FT%T)"
  $PY -m launch.sweep "${COMMON[@]}" "${extra[@]}" --workdir="$OUT/vae_bc_$budget" "$@" >> "$OUT/vae_bc_$budget.log" 2>&1
  echo "vae_bc budget $budget rc=$? $(date -u +%FT%T)"
done
