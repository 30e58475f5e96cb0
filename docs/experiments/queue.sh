# Sourced by the experiment scripts here (run them from the repository root): the environment, the
# output folder, and run NAME FLAGS... = one launch.train job in $OUT/NAME, logged to $OUT/NAME.log.
# Usage in a script:  DEFAULT_OUT=runs/TOPIC; . docs/experiments/queue.sh
set -u
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-../shared/datasets}
PY=${PY:-python}
OUT=${OUT:-$DEFAULT_OUT}
mkdir -p "$OUT"
run() { name=$1; shift; echo "$name start $(date -u +%FT%T)"; $PY -m launch.train "$@" --workdir="$OUT/$name" > "$OUT/$name.log" 2>&1; echo "$name rc=$? $(date -u +%FT%T)"; }
