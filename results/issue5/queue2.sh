#!/bin/bash
set -u
export MINARI_DATASETS_PATH=/work/shared/datasets
PY=/work/venv/bin/python
while pgrep -f "screen.sh" >/dev/null; do sleep 10; done
cd /work/snap3; export PYTHONPATH=/work/snap3
C="--algo=bc --bc_vae_only --sparsity=0.95 --seeds=0 --dataset=sb3/halfcheetah/expert-v0 --steps=10000 --eval_every=5000 --checkpoint_every=5000"
R=/work/results/screen95
run() { name=$1; shift; echo "$name start $(date -u +%T)"; $PY -m launch.train $C "$@" --workdir=$R/$name > $R/$name.log 2>&1; echo "$name rc=$? $(date -u +%T)"; }
run rescale --pruner=random,snip --rescale_init
run erk_rescale --pruner=random,snip --allocation=erk --rescale_init
echo "screen2 done $(date -u +%T)"
bash /work/results/base_s2.sh
bash /work/results/sweep_check.sh
