#!/usr/bin/env bash
# Runs the ARD accuracy study of docs/accuracy/ard_mlp.md: every (method, p, seed) run of the
# ard_accuracy program as its own process, JOBS at a time, each single-threaded and under `nice -n 5`
# (the machine is shared), all appending to one JSONL file. Runs already complete in the file are
# skipped, so the same command resumes an interrupted study. Seed-major order: if the study is cut
# short, whole seeds are complete for every method and rate.
#
# Usage: tools/experiments/run_ard_accuracy.sh BUILD_DIR OUT.jsonl [HIDDEN] [EPOCHS]
#   e.g. nohup tools/experiments/run_ard_accuracy.sh build-acc docs/accuracy/ard_mlp.jsonl 512 12 &
# Environment: JOBS (default 2), SEEDS (default "1 2 3"), RATES (default "0.3 0.5 0.7"),
#   METHODS (default "bernoulli row row-fixed tile"; the no-dropout reference runs once per seed).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 BUILD_DIR OUT.jsonl [HIDDEN] [EPOCHS]" >&2
  exit 2
fi
build_dir=$1
out=$2
hidden=${3:-512}
epochs=${4:-12}
jobs=${JOBS:-2}
program="$build_dir/tools/experiments/ard_accuracy"
[[ -x $program ]] || { echo "$0: $program not built (cmake --build $build_dir --target ard_accuracy)" >&2; exit 1; }

configs=()
for seed in ${SEEDS:-1 2 3}; do
  configs+=("none 0.5 $seed")  # the rate is ignored for "none"
  for rate in ${RATES:-0.3 0.5 0.7}; do
    for method in ${METHODS:-bernoulli row row-fixed tile}; do
      configs+=("$method $rate $seed")
    done
  done
done

echo "$(date -u +%FT%TZ) start: ${#configs[@]} runs, hidden $hidden, $epochs epochs, $jobs at a time -> $out"
printf '%s\n' "${configs[@]}" |
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 xargs -P "$jobs" -L 1 sh -c \
    'exec nice -n 5 "$0" --out "$1" --hidden "$2" --epochs "$3" --methods "$4" --rates "$5" --seeds "$6"' \
    "$program" "$out" "$hidden" "$epochs"
echo "$(date -u +%FT%TZ) done"
