#!/usr/bin/env bash
# TD3+BC dense quality check (docs/results/td3bc_iql.md): 2 seeds, 100k steps, batch 256, on the three sb3 expert
# datasets (the authors' defaults; compare with d3rlpy's TD3PlusBCConfig on the same transitions).
# Run from the repository root; re-running resumes.   OUT=runs/td3bc_iql bash docs/experiments/td3bc_dense.sh
DEFAULT_OUT=runs/td3bc_iql; . docs/experiments/queue.sh
for env in walker2d halfcheetah hopper; do
  run td3bc_${env}_dense --algo=td3bc --dataset=sb3/$env/expert-v0 --pruner=none --seeds=0,1 --steps=100000 \
      --batch_size=256 --eval_every=5000 --checkpoint_every=5000 --eval_episodes=10
done
echo "queue done $(date -u +%FT%T)"
