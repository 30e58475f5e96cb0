#!/usr/bin/env bash
# One prepared call on a lent GPU machine (results: docs/results/speed.md, "GPU"): smoke, then the throughput curves.
# Usage there: OUT=<folder> bash bench/gpu_check.sh   (python3 with jax[cuda], flax, optax, chex)
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import jax, flax, optax, chex; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'chex', chex.__version__, jax.devices(), 'default matmul precision:', jax.config.jax_default_matmul_precision)" | tee -a "$OUT/gpu.txt"
T="python3 bench/train_throughput.py --envs=halfcheetah --steps=200 --repeats=3 --peak_n=8192"
LEVELS=0.1,0.2,0.3,0.5,0.7,0.8,0.9,0.95   # 8 sparsity levels; 40 runs = 5 seeds x 8 levels
step() { local name=$1 limit=$2; shift 2; echo "=== $name"; timeout "$limit" "$@" --out="$OUT/$name.json" >"$OUT/$name.log" 2>&1; tail -n 14 "$OUT/$name.log"; }
step smoke 90 $T --quick --peak_n=1024
grep -q "^wrote" "$OUT/smoke.log" || { cat "$OUT/smoke.log"; exit 1; }
step bcq_fp32 200 $T --algos=bcq --runs=1,5,10,20,40,80,160 --variants=masked --sparsities=$LEVELS
# TD3+BC / IQL: 5 seeds x 8 levels = 40 runs in one program; the policy delay is a branch under vmap
step td3bc_iql_fp32 150 $T --algos=td3bc,iql --runs=1,5,40,160 --variants=dense,masked --sparsities=$LEVELS
step bcq_bf16 100 $T --algos=bcq --runs=1,40,160 --variants=masked --sparsities=$LEVELS --compute_dtype=bfloat16
step bc_fp32 100 $T --algos=bc,bc_vae --runs=1,40 --variants=dense,masked --sparsities=$LEVELS
JAX_DEFAULT_MATMUL_PRECISION=highest step bcq_fp32_highest 80 $T --algos=bcq --runs=1,40 --variants=masked --sparsities=$LEVELS
