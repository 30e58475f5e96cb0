#!/usr/bin/env bash
# VAE-only BC (docs/results/narrow_control.md): the equal-parameter dense control ("narrow") at 95%
# against dense and erk_random on the three sb3 expert datasets, then SNIP and SynFlow at 95%; then erk_random and narrow at
# 90% and 98%, and dense hopper to 150k steps (at what length is dense hopper VAE-BC stable?).
# Run from the repository root; every step is a launch.train workdir, so re-running resumes.
#   OUT=runs/narrow_control bash docs/experiments/narrow_control_vae_bc.sh
# The narrow networks here are given by width (dense, --pruner=none): 153-153 holds 59,364 kernel
# weights on halfcheetah/walker2d (95% of 750-750 keeps 59,325), 159-159 on hopper (57,876 vs 57,975 kept)
# (docs/design.md, "The narrow control's sizing rule").
DEFAULT_OUT=runs/narrow_control; . docs/experiments/queue.sh
V="--algo=bc --bc_vae_only --eval_episodes=10"
HC="$V --dataset=sb3/halfcheetah/expert-v0 --steps=30000 --eval_every=10000 --checkpoint_every=10000"
WK="$V --dataset=sb3/walker2d/expert-v0 --steps=30000 --eval_every=5000 --checkpoint_every=5000"
HP="$V --dataset=sb3/hopper/expert-v0 --steps=50000 --eval_every=5000 --checkpoint_every=5000"
run hc_narrow95 $HC --pruner=none --vae_hidden=153,153 --seeds=0,1,2
run wk_narrow95 $WK --pruner=none --vae_hidden=153,153 --seeds=0,1
run wk_dense_erk95 $WK --pruner=none,erk_random --sparsity=0.95 --seeds=0,1
run hp_narrow95 $HP --pruner=none --vae_hidden=159,159 --seeds=0,1
run hp_dense_erk95 $HP --pruner=none,erk_random --sparsity=0.95 --seeds=0,1
run wk_snip_synflow95 $WK --pruner=snip,synflow --sparsity=0.95 --seeds=0,1
run hp_snip_synflow95 $HP --pruner=snip,synflow --sparsity=0.95 --seeds=0,1
run hc_erk_narrow90_98 $HC --pruner=erk_random,narrow --sparsity=0.9,0.98 --seeds=0,1
run wk_erk_narrow90_98 $WK --pruner=erk_random,narrow --sparsity=0.9,0.98 --seeds=0,1
run hp_erk_narrow90_98 $HP --pruner=erk_random,narrow --sparsity=0.9,0.98 --seeds=0,1
run hp_dense_150k $V --dataset=sb3/hopper/expert-v0 --steps=150000 --eval_every=5000 --checkpoint_every=10000 \
    --pruner=none --seeds=0,1
echo "queue done $(date -u +%FT%T)"
