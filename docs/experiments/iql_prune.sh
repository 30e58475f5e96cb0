#!/usr/bin/env bash
# IQL pruned at init (docs/results/td3bc_iql.md), 2 seeds, 100k steps, the authors' defaults. Resumes when re-run.
# walker2d expert: erk_random, SNIP, SynFlow (one program) and the narrow dense control at 95%, then 90%;
# halfcheetah and hopper expert: erk_random, SNIP and narrow at 95%; then walker2d GraSP and random at
# 95%, and the four at 98%. Dense runs are iql_dense.sh's.
# Run from the repository root:   OUT=runs/td3bc_iql bash docs/experiments/iql_prune.sh
DEFAULT_OUT=runs/td3bc_iql; . docs/experiments/queue.sh
common="--algo=iql --seeds=0,1 --steps=100000 --batch_size=256 --eval_every=5000 --checkpoint_every=5000 --eval_episodes=10"
run iql_walker2d_prune95 $common --dataset=sb3/walker2d/expert-v0 --pruner=erk_random,snip,synflow,narrow --sparsity=0.95
# every 95% IQL network failed on walker2d: is it the orthogonal init under a 95% mask? (PyTorch's init, 50k)
run iql_walker2d_torchinit95_50k --algo=iql --seeds=0,1 --steps=50000 --batch_size=256 --eval_every=5000 \
    --checkpoint_every=5000 --eval_episodes=10 --dataset=sb3/walker2d/expert-v0 --pruner=erk_random,synflow \
    --sparsity=0.95 --init=torch
# 90% before the other datasets: at 95% every IQL network collapsed on walker2d, so where it starts to break
run iql_walker2d_prune90 $common --dataset=sb3/walker2d/expert-v0 --pruner=erk_random,snip,synflow,narrow --sparsity=0.9
for env in halfcheetah hopper; do
  run iql_${env}_prune95 $common --dataset=sb3/$env/expert-v0 --pruner=erk_random,snip,narrow --sparsity=0.95
done
run iql_walker2d_grasp_random95 $common --dataset=sb3/walker2d/expert-v0 --pruner=grasp,random --sparsity=0.95
run iql_walker2d_prune98 $common --dataset=sb3/walker2d/expert-v0 --pruner=erk_random,snip,synflow,narrow --sparsity=0.98
echo "queue done $(date -u +%FT%T)"
