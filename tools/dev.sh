#!/usr/bin/env bash
# The README's entry point: set up, build, and run one job.
#   tools/dev.sh train   set up, build, and train the default model with `sieve train --solver
#                        models/fashion_mlp/solver.prototxt` (extra arguments go to it, e.g. --gpu 0)
#   tools/dev.sh test    set up, build, prepare the Jane Austen corpus (the model zoo's language models
#                        train on it in the tests) and run the whole test suite through ctest
#   tools/dev.sh build   set up and build only
# Environment: SIEVE_BUILD_DIR (default build), SIEVE_CMAKE_ARGS (extra configure flags).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
job=${1:-}
case "$job" in
  train|test|build) ;;
  *) echo "usage: tools/dev.sh train|test|build" >&2; exit 2 ;;
esac

bash tools/setup.sh
build=${SIEVE_BUILD_DIR:-build}
jobs=$(nproc)
# shellcheck disable=SC2086
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${SIEVE_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$jobs"

case "$job" in
  train) "$build/tools/sieve/sieve" train --solver models/fashion_mlp/solver.prototxt "${@:2}" ;;
  test)
    bash tools/data/prepare_austen.sh  # idempotent: a prepared corpus is left as it is
    ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600
    ;;
  build) ;;
esac
