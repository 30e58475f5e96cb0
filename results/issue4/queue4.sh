#!/bin/bash
set -u
export MINARI_DATASETS_PATH=/work/shared/datasets
PY=/work/venv/bin/python
while pgrep -f "workdir=/work/results/i5_synflow95" >/dev/null; do sleep 5; done
echo "synflow done $(date -u +%T)"
cd /work/snap3; export PYTHONPATH=/work/snap3
R=/work/results
run() { name=$1; shift; echo "$name start $(date -u +%T)"; $PY -m launch.train "$@" --workdir=$R/$name > $R/$name.log 2>&1; echo "$name rc=$? $(date -u +%T)"; }
W="--algo=bc --bc_vae_only --dataset=sb3/walker2d/expert-v0 --steps=10000 --eval_every=5000 --checkpoint_every=5000 --seeds=0 --sparsity=0.95"
run i5_walker $W --pruner=none,synflow,random,erk_random
B="--dataset=sb3/halfcheetah/expert-v0 --steps=1500 --eval_every=500 --eval_episodes=5 --checkpoint_every=500 --seeds=0"
run bcq_hc_1500 --algo=bcq $B --pruner=none,snip,synflow,erk_random --sparsity=0.95
run bc_hc_1500 --algo=bc $B --pruner=none,snip --sparsity=0.9,0.95
cd /work/main; export PYTHONPATH=/work/main
mkdir -p $R/bench
echo "bench start $(date -u +%T)"
$PY bench/train_throughput.py --envs=hopper --runs=1,5,15,40 --repeats=2 --chunk_s=2 --out=$R/bench/tt_hopper.json > $R/bench/tt_hopper.log 2>&1
echo "tt hopper rc=$? $(date -u +%T)"
$PY bench/vs_pytorch.py --repeats=2 --chunk_s=5 --out=$R/bench/vs_pytorch.json > $R/bench/vs_pytorch.log 2>&1
echo "vs_pytorch rc=$? $(date -u +%T)"
$PY bench/inference.py --blas_threads=1 --out=$R/bench/inference.json > $R/bench/inference.log 2>&1
echo "inference rc=$? $(date -u +%T)"
$PY bench/train_throughput.py --envs=halfcheetah --runs=5 --repeats=2 --chunk_s=2 --out=$R/bench/tt_halfcheetah.json > $R/bench/tt_halfcheetah.log 2>&1
echo "tt halfcheetah rc=$? $(date -u +%T)"
