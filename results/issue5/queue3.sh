#!/bin/bash
set -u
export MINARI_DATASETS_PATH=/work/shared/datasets
PY=/work/venv/bin/python
while pgrep -f "queue2.sh" >/dev/null; do sleep 10; done
cd /work/snap3; export PYTHONPATH=/work/snap3
R=/work/results
run() { name=$1; shift; echo "$name start $(date -u +%T)"; $PY -m launch.train "$@" --workdir=$R/$name > $R/$name.log 2>&1; echo "$name rc=$? $(date -u +%T)"; }
HC="--algo=bc --bc_vae_only --dataset=sb3/halfcheetah/expert-v0 --steps=30000 --eval_every=10000 --checkpoint_every=10000"
run i5_random_erk95 $HC --pruner=random --allocation=erk --sparsity=0.95 --seeds=0,1,2
run i5_synflow95 $HC --pruner=synflow --sparsity=0.95 --seeds=0,1,2
W="--algo=bc --bc_vae_only --dataset=sb3/walker2d/expert-v0 --steps=10000 --eval_every=5000 --checkpoint_every=5000 --seeds=0 --sparsity=0.95"
run i5_walker_a $W --pruner=none,synflow,random
run i5_walker_b $W --pruner=random --allocation=erk
B="--dataset=sb3/halfcheetah/expert-v0 --steps=2000 --eval_every=1000 --checkpoint_every=1000 --seeds=0"
run bcq_hc_2k_a --algo=bcq $B --pruner=none,snip,synflow --sparsity=0.95
run bcq_hc_2k_b --algo=bcq $B --pruner=random --allocation=erk --sparsity=0.95
run bc_hc_2k --algo=bc $B --pruner=none,snip --sparsity=0.9,0.95
echo "queue3 done $(date -u +%T)"
