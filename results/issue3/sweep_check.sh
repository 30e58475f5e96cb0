#!/bin/bash
# Issue 3: the sweep uninterrupted vs SIGKILLed midway and restarted; results must be identical.
set -u
export MINARI_DATASETS_PATH=/work/shared/datasets
PY=/work/venv/bin/python
cd /work/snap2; export PYTHONPATH=/work/snap2
while pgrep -f "base_s2.sh" >/dev/null; do sleep 10; done
R=/work/results
SW="--algos=bc --bc_vae_only --pruners=none,snip,grasp,random --sparsities=0.5,0.9,0.95,0.99 --seeds=0,1,2 --datasets=sb3/halfcheetah/expert-v0 --steps=1000 --eval_every=500 --eval_episodes=3 --checkpoint_every=500"
echo "straight start $(date -u +%T)"
$PY -m launch.sweep $SW --workdir=$R/sweep_straight > $R/sweep_straight.log 2>&1
echo "straight rc=$? $(date -u +%T)"
$PY -m launch.sweep $SW --workdir=$R/sweep_killed > $R/sweep_killed.log 2>&1 &
PID=$!
while ! ls -d $R/sweep_killed/programs/*/checkpoints/500 >/dev/null 2>&1; do sleep 2; done
sleep 30
pkill -9 -f "sweep_killed"; kill -9 $PID 2>/dev/null; echo "killed $(date -u +%T)"
sleep 2
$PY -m launch.sweep $SW --workdir=$R/sweep_killed > $R/sweep_killed_restart.log 2>&1
echo "restart rc=$? $(date -u +%T)"
cmp $R/sweep_straight/results.jsonl $R/sweep_killed/results.jsonl && echo "IDENTICAL results.jsonl"
cmp $R/sweep_straight/results.csv $R/sweep_killed/results.csv && echo "IDENTICAL results.csv"
echo "end $(date -u +%T)"
