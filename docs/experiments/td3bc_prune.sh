#!/usr/bin/env bash
# TD3+BC pruned at init (docs/results/td3bc_iql.md), 2 seeds, 100k steps, the authors' defaults. Resumes when re-run.
# walker2d expert: erk_random, SNIP, SynFlow (one program) and the narrow dense control at 95%, then 90% and
# 98%, then GraSP and random at 95%; halfcheetah and hopper expert: erk_random, SNIP and narrow at 95%.
# Dense runs are td3bc_dense.sh's.
# Run from the repository root:   OUT=runs/td3bc_iql bash docs/experiments/td3bc_prune.sh
DEFAULT_OUT=runs/td3bc_iql; . docs/experiments/queue.sh
run td3bc_walker2d_prune95 --algo=td3bc --dataset=sb3/walker2d/expert-v0 --pruner=erk_random,snip,synflow,narrow \
    --sparsity=0.95 --seeds=0,1 --steps=100000 --batch_size=256 --eval_every=5000 --checkpoint_every=5000 \
    --eval_episodes=10
run td3bc_walker2d_prune90_98 --algo=td3bc --dataset=sb3/walker2d/expert-v0 --pruner=erk_random,snip,synflow,narrow \
    --sparsity=0.9,0.98 --seeds=0,1 --steps=100000 --batch_size=256 --eval_every=5000 --checkpoint_every=5000 \
    --eval_episodes=10
run td3bc_walker2d_grasp_random95 --algo=td3bc --dataset=sb3/walker2d/expert-v0 --pruner=grasp,random \
    --sparsity=0.95 --seeds=0,1 --steps=100000 --batch_size=256 --eval_every=5000 --checkpoint_every=5000 \
    --eval_episodes=10
for env in halfcheetah hopper; do
  run td3bc_${env}_prune95 --algo=td3bc --dataset=sb3/$env/expert-v0 --pruner=erk_random,snip,narrow \
      --sparsity=0.95 --seeds=0,1 --steps=100000 --batch_size=256 --eval_every=5000 --checkpoint_every=5000 \
      --eval_episodes=10
done
echo "queue done $(date -u +%FT%T)"
