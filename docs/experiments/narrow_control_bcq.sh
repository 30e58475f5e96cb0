#!/usr/bin/env bash
# The equal-parameter dense control with full BCQ (docs/results/narrow_control.md). Walker2d expert:
# dense, erk_random 95%, SNIP 95% and the narrow dense control at 95%, 2 seeds, 20k steps (d3rlpy's BCQ,
# seed 0: 52.5-75.0 at 5k-20k, docs/results/narrow_control/peer/); then hopper expert, the paper's
# failure case: dense, erk_random, SNIP and narrow at 95%, 2 seeds, 20k steps.
# Run from the repository root; re-running resumes.   OUT=runs/narrow_control bash docs/experiments/narrow_control_bcq.sh
DEFAULT_OUT=runs/narrow_control; . docs/experiments/queue.sh
run bcq_wk_95 --algo=bcq --dataset=sb3/walker2d/expert-v0 --pruner=none,erk_random,snip,narrow --sparsity=0.95 \
    --seeds=0,1 --steps=20000 --eval_every=2000 --checkpoint_every=2000 --eval_episodes=10
run bcq_hp_95 --algo=bcq --dataset=sb3/hopper/expert-v0 --pruner=none,erk_random,snip,narrow --sparsity=0.95 \
    --seeds=0,1 --steps=20000 --eval_every=2000 --checkpoint_every=2000 --eval_episodes=10
echo "queue done $(date -u +%FT%T)"
