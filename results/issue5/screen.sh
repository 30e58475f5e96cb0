#!/bin/bash
# Issue 5 screen: 95% sparsity, VAE-only BC halfcheetah, seed 0, 10k steps.
set -u
export MINARI_DATASETS_PATH=/work/shared/datasets
PY=/work/venv/bin/python
cd /work/snap2; export PYTHONPATH=/work/snap2
C="--algo=bc --bc_vae_only --sparsity=0.95 --seeds=0 --dataset=sb3/halfcheetah/expert-v0 --steps=10000 --eval_every=5000 --checkpoint_every=5000"
R=/work/results/screen95
mkdir -p $R
run() { name=$1; shift; echo "$name start $(date -u +%T)"; $PY -m launch.train $C "$@" --workdir=$R/$name > $R/$name.log 2>&1; echo "$name rc=$? $(date -u +%T)"; }
run base --pruner=none,random,snip,synflow
run erk --pruner=random,snip --allocation=erk
run floor --pruner=snip --min_layer_density=0.02
run acting --pruner=snip --vae_score=acting
run iter --pruner=snip --prune_iterations=10
run warmup --pruner=snip --warmup_steps=500
echo "screen done $(date -u +%T)"
