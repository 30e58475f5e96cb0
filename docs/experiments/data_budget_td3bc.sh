#!/usr/bin/env bash
# Where does sparse pay? TD3+BC at 95%: dense, narrow dense (same weights), random+ERK and SynFlow, on three
# datasets, at data budgets of 10k / 50k transitions and the whole dataset; 5 seeds, 100k steps, the authors'
# defaults. One resumable sweep per budget (re-run to resume; --dry_run to plan).
# Run from the repository root:   OUT=runs/data_budget bash docs/experiments/data_budget_td3bc.sh
set -u
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/datasets}
PY=${PY:-python}
OUT=${OUT:-runs/data_budget}
mkdir -p "$OUT"
COMMON=(--algos=td3bc --pruners=none,narrow,erk_random,synflow --sparsities=0.95 --seeds=0,1,2,3,4
        --datasets=sb3/walker2d/expert-v0,sb3/hopper/expert-v0,sb3/hopper/medium-v0
        --steps=100000 --batch_size=256 --eval_every=5000 --eval_episodes=10 --checkpoint_every=5000)
for budget in 10000 50000 all; do
  extra=(); [ "$budget" = all ] || extra=(--max_transitions=$budget)
  echo "td3bc budget $budget start $(date -u +%FT%T)"
  $PY -m launch.sweep "${COMMON[@]}" "${extra[@]}" --workdir="$OUT/td3bc_$budget" "$@" >> "$OUT/td3bc_$budget.log" 2>&1
  echo "td3bc budget $budget rc=$? $(date -u +%FT%T)"
done
