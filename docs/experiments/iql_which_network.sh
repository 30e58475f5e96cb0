#!/usr/bin/env bash
# Every IQL network pruned at 95% on walker2d failed (7.6-14.7 vs dense 66.1). Which network
# breaks it? random+ERK at 95% in the actor alone, then in the critic and value alone (--prune_networks;
# each network keeps the mask the full pruning gives it), 2 seeds. 50k steps of the 100k schedule
# (--actor_lr_decay_steps=100000): the same computation as the first half of iql_prune.sh's
# 100k runs, so the 50k evaluations compare with theirs (dense, random+ERK everywhere) at equal steps.
# Run from the repository root:   OUT=runs/td3bc_iql bash docs/experiments/iql_which_network.sh [actor|critics]
DEFAULT_OUT=runs/td3bc_iql; . docs/experiments/queue.sh
common="--algo=iql --seeds=0,1 --steps=50000 --actor_lr_decay_steps=100000 --batch_size=256 --eval_every=5000 \
  --checkpoint_every=5000 --eval_episodes=10 --dataset=sb3/walker2d/expert-v0 --pruner=erk_random --sparsity=0.95"
which=${1:-both}
if [ "$which" != critics ]; then
  run iql_walker2d_only_actor95_50k $common --prune_networks=actor
fi
if [ "$which" != actor ]; then
  run iql_walker2d_only_critics95_50k $common --prune_networks=critic,value
fi
