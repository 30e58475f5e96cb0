#!/usr/bin/env bash
# Issue 14, full BCQ on walker2d expert: dense, erk_random 95%, SNIP 95% and the narrow dense
# control at 95%, 2 seeds, 20k steps (d3rlpy's BCQ reached 80-86 here at 6-12k steps); then hopper
# expert, the paper's failure case: dense, erk_random, SNIP and narrow at 95%, 2 seeds, 20k steps.
# Run from the repository root; re-running resumes.   OUT=runs/issue14 bash docs/experiments/issue14_bcq.sh
DEFAULT_OUT=runs/issue14; . docs/experiments/queue.sh
run bcq_wk_95 --algo=bcq --dataset=sb3/walker2d/expert-v0 --pruner=none,erk_random,snip,narrow --sparsity=0.95 \
    --seeds=0,1 --steps=20000 --eval_every=2000 --checkpoint_every=2000 --eval_episodes=10
run bcq_hp_95 --algo=bcq --dataset=sb3/hopper/expert-v0 --pruner=none,erk_random,snip,narrow --sparsity=0.95 \
    --seeds=0,1 --steps=20000 --eval_every=2000 --checkpoint_every=2000 --eval_episodes=10
echo "queue done $(date -u +%FT%T)"
