#!/usr/bin/env bash
# Peer check (docs/results/td3bc_iql.md, docs/results/narrow_control.md): d3rlpy 2.8.1 IQL and TD3+BC
# (1 seed, 100k, batch 256) on the three sb3 expert datasets, and BCQ on walker2d (20k, our sizes), on our
# transitions. One core, in the background.
# Run from the repository root; a finished run (its JSON has the last step) is skipped.
#   OUT=runs/peer bash docs/experiments/peer_d3rlpy.sh [ALGO:ENV ...]   (arguments: only those runs)
set -u
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/datasets}
PY=${PY:-python}
D3=${D3:-.bench/d3rlpy/bin/python}
OUT=${OUT:-runs/peer}
ROOT=$(pwd)
mkdir -p "$OUT"
for env in walker2d halfcheetah hopper; do
  [ -f "$OUT/$env.npz" ] || $PY docs/experiments/peer_d3rlpy.py dump --dataset=sb3/$env/expert-v0 --out="$OUT/$env.npz"
done
ONLY=" $* "
run() {  # algo env steps
  [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $1:$2 "* ]] || return 0
  out="$OUT/$1_$2_s0.json"
  if [ -f "$out" ] && grep -q "\"step\": $3," "$out"; then echo "$1 $2 done"; return; fi
  echo "$1 $2 start $(date -u +%FT%T)"
  (cd "$OUT" && "$ROOT/$D3" $ROOT/docs/experiments/peer_d3rlpy.py train --algo=$1 --data=$2.npz --steps=$3 \
      --seed=0 --out=$1_$2_s0.json > $1_$2_s0.log 2>&1)
  echo "$1 $2 rc=$? $(date -u +%FT%T)"
}
run iql walker2d 100000
run td3bc walker2d 100000
run bcq walker2d 20000
run iql halfcheetah 100000
run iql hopper 100000
run td3bc halfcheetah 100000
run td3bc hopper 100000
echo "queue done $(date -u +%FT%T)"
