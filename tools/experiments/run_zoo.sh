#!/usr/bin/env bash
# Trains zoo models (or any solver files) with several seeds through `sieve train`, JOBS runs at a time,
# each single-threaded and under `nice -n 5` (the machine is shared), and appends one JSON line per
# finished run to OUT_DIR/index.jsonl: the model (the solver's folder name), the variant (the solver file's
# name without "solver_" and ".prototxt"; for solver.prototxt the dropout kind of its net, e.g. "row"), the
# seed, the run folder holding train.log and metrics.jsonl, the wall seconds and the final test line of the log. The accuracy studies of
# docs/ and the measured results of the models/*/README.md files are runs of this script; the plots and
# tables come from tools/plots/ reading the index. A (solver, seed) already in the index is skipped, so the
# same command resumes an interrupted study; a run cut short (killed, or stopped by a signal) is not indexed
# and is trained again from its start.
#
# Usage: tools/experiments/run_zoo.sh BUILD_DIR OUT_DIR SOLVER [SOLVER ...]
#   e.g. SEEDS="1 2 3" nohup tools/experiments/run_zoo.sh build models/runs/vgg \
#          models/fashion_vgg/solver*.prototxt &
# Environment: SEEDS (default "1 2 3"), JOBS (default 2), THREADS (OpenMP/BLAS threads per run, default 1).
set -euo pipefail

if (($# < 3)); then
  echo "usage: $0 BUILD_DIR OUT_DIR SOLVER [SOLVER ...]" >&2
  exit 2
fi
build_dir=$1
out=$2
shift 2
sieve="$build_dir/tools/sieve/sieve"
[[ -x $sieve ]] || { echo "$0: $sieve not built (cmake --build $build_dir --target sieve)" >&2; exit 1; }
for solver in "$@"; do
  [[ -f $solver ]] || { echo "$0: no solver file '$solver'" >&2; exit 1; }
done
mkdir -p "$out"
index=$out/index.jsonl
touch "$index"

# One run: trains SOLVER with SEED into OUT_DIR/<model>/<variant>/seed<SEED>/, then appends its index line.
run_one() {
  local sieve=$1 out=$2 solver=$3 seed=$4
  local model variant base prefix log start end run_dir final
  model=$(basename "$(dirname "$(realpath "$solver")")")
  base=$(basename "$solver" .prototxt)
  variant=${base#solver_}
  if [[ $base == solver ]]; then
    # The model's recommended variant is named by its dropout kind: "row", "sensitivity", ...
    local net
    net=$(dirname "$solver")/$(sed -n 's/^net: *"\([^"]*\)".*/\1/p' "$solver")
    variant=$(sed -n 's/.*dropout_param {.*kind: *\([A-Z_]*\).*/\1/p' "$net" | head -1 | tr 'A-Z' 'a-z')
    variant=${variant:-main}
  fi
  if grep -q "\"solver\":\"$solver\",\"seed\":$seed," "$out/index.jsonl"; then
    echo "run_zoo: $solver seed $seed already in $out/index.jsonl"
    return 0
  fi
  prefix=$out/$model/$variant/seed$seed/$model
  mkdir -p "$(dirname "$prefix")"
  log=$(dirname "$prefix")/stdout.log
  start=$(date +%s.%N)
  if ! nice -n 5 "$sieve" train --solver "$solver" --seed "$seed" --snapshot-prefix "$prefix" >"$log" 2>&1; then
    echo "run_zoo: FAILED: $solver seed $seed (see $log)" >&2
    return 1
  fi
  end=$(date +%s.%N)
  # SIGINT/SIGTERM make `sieve train` snapshot and stop with exit 0: such a run is not finished.
  if grep -q '\] Stopped at iteration' "$log"; then
    echo "run_zoo: STOPPED EARLY: $solver seed $seed (see $log); not indexed" >&2
    return 1
  fi
  run_dir=$(sed -n 's/.*\] Run folder \(.*\)$/\1/p' "$log" | tail -1)
  final=$(sed -n 's/.*\] \(Final test .*\)$/\1/p' "$log" | tail -1)
  # One write of one line: concurrent runs may append to the same index.
  printf '{"model":"%s","variant":"%s","solver":"%s","seed":%s,"run_dir":"%s","wall_s":%.1f,"final":"%s"}\n' \
    "$model" "$variant" "$solver" "$seed" "$run_dir" "$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')" "$final" >>"$out/index.jsonl"
  echo "run_zoo: $model/$variant seed $seed: $final"
}
export -f run_one

runs=()
for seed in ${SEEDS:-1 2 3}; do  # seed-major: a study cut short has whole seeds of every variant
  for solver in "$@"; do
    runs+=("$solver $seed")
  done
done
echo "$(date -u +%FT%TZ) run_zoo: ${#runs[@]} runs, ${JOBS:-2} at a time -> $index"
printf '%s\n' "${runs[@]}" |
  OMP_NUM_THREADS=${THREADS:-1} OPENBLAS_NUM_THREADS=${THREADS:-1} xargs -P "${JOBS:-2}" -L 1 \
    bash -c 'run_one "$0" "$1" "$2" "$3"' "$sieve" "$out"
echo "$(date -u +%FT%TZ) run_zoo: done"
