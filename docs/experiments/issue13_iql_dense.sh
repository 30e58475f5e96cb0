#!/usr/bin/env bash
# Issue 13, IQL dense quality check: 2 seeds, 100k steps, batch 256, on the three sb3 expert
# datasets (the authors' defaults; compare with d3rlpy's IQLConfig on the same transitions).
# Run from the repository root; re-running resumes.   OUT=runs/issue13 bash docs/experiments/issue13_iql_dense.sh
DEFAULT_OUT=runs/issue13; . docs/experiments/queue.sh
for env in walker2d halfcheetah hopper; do
  run iql_${env}_dense --algo=iql --dataset=sb3/$env/expert-v0 --pruner=none --seeds=0,1 --steps=100000 \
      --batch_size=256 --eval_every=5000 --checkpoint_every=5000 --eval_episodes=10
done
echo "queue done $(date -u +%FT%T)"
