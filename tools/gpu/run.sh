#!/usr/bin/env bash
# Runs THERE, on the lent GPU machine, from the repository root, with $OUT naming an empty output
# folder: checks the GPU, runs the [cuda] tests, the GPU MatMul benchmark and then the zoo's benchmark
# matrix against PyTorch CUDA (`sieve-bench zoo --device cuda`) from the bundle that tools/gpu/bundle.sh
# made here, and writes everything to $OUT. Every step has a timeout, and the whole script a budget that
# caps them (8 minutes: what a device session allows with room to rerun); a failing step stops the run
# with a line that names it (in $OUT/summary.txt and on stdout); on a machine without a GPU it stops
# within seconds. It never builds anything: that machine has no packages.
#   SIEVE_GPU_BUNDLE        the bundle folder (default gpu-bundle/ in the repository root)
#   SIEVE_GPU_BUDGET        seconds for the whole script (default 470); each step gets at most what is left
#   SIEVE_GPU_TEST_TIMEOUT  seconds for the [cuda] tests (default 240)
#   SIEVE_GPU_BENCH_TIMEOUT seconds for the MatMul benchmark (default 90)
#   SIEVE_GPU_ZOO_TIMEOUT   seconds for the zoo matrix (default 240)
#   SIEVE_GPU_ZOO_ARGS      its options (default "--reps 20": every rate, the SPEC's 20 timed steps)
#   SIEVE_GPU_SANITIZE=1    also run the [cuda] tests of MatMul and the kernels under compute-sanitizer
#                           memcheck after the plain run (output: sanitizer.log)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bundle=${SIEVE_GPU_BUNDLE:-$root/gpu-bundle}
deadline=$((SECONDS + ${SIEVE_GPU_BUDGET:-470}))
test_timeout=${SIEVE_GPU_TEST_TIMEOUT:-240}
bench_timeout=${SIEVE_GPU_BENCH_TIMEOUT:-90}
zoo_timeout=${SIEVE_GPU_ZOO_TIMEOUT:-240}
zoo_args=${SIEVE_GPU_ZOO_ARGS:---reps 20}
if [[ -z ${OUT:-} ]]; then
  echo "run.sh: OUT must name the output folder" >&2
  exit 2
fi
mkdir -p "$OUT"
summary=$OUT/summary.txt
: >"$summary"

note() { echo "run.sh: $*" | tee -a "$summary"; }
fail() {
  note "FAILED: $*"
  exit 1
}

# --- The bundle --------------------------------------------------------------------------------------
tests=$bundle/bin/sieve_tests
bench=$bundle/bin/sieve-bench
[[ -x $tests ]] || fail "no $tests: run tools/gpu/bundle.sh on the build machine and carry gpu-bundle"

# --- The GPU -----------------------------------------------------------------------------------------
command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: this machine has no NVIDIA driver (not a GPU machine)"
timeout 30 nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 ||
  fail "nvidia-smi failed (exit $?): no usable GPU or driver; see nvidia-smi.txt"
gpu=$(timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1) ||
  fail "nvidia-smi cannot query the GPU: $gpu"
note "GPU: $gpu"
cat "$OUT/nvidia-smi.txt"

# --- Libraries: the bundle's own, then the machine's CUDA stack --------------------------------------
libpath=$bundle/lib
cuda_dirs=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib)
for dir in "${cuda_dirs[@]}"; do
  [[ -d $dir ]] && libpath+=:$dir
done
libpath+=${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
missing() { LD_LIBRARY_PATH=$libpath timeout 30 ldd "$tests" 2>/dev/null | awk '/not found/ {print $1}' | sort -u; }
for lib in $(missing); do
  # A CUDA library outside the usual folders (e.g. a Python wheel's): look for it once.
  found=$(timeout 60 find /usr/local /opt /usr/lib -name "$lib" -print -quit 2>/dev/null || true)
  [[ -n $found ]] && libpath+=:$(dirname "$found") && note "found $lib in $(dirname "$found")"
done
still_missing=$(missing || true)
[[ -z $still_missing ]] || fail "libraries not found on this machine: $(tr '\n' ' ' <<<"$still_missing")"
# The C++ runtime: the machine's own if the binaries start with it, else the bundle's (built on glibc 2.36).
starts() { LD_LIBRARY_PATH=$1 timeout 60 "$tests" --help >/dev/null 2>&1; }
if ! starts "$libpath"; then
  libpath=$bundle/lib-gcc:$libpath
  if ! starts "$libpath"; then
    why=$(LD_LIBRARY_PATH=$libpath timeout 60 "$tests" --help 2>&1 | head -n 3 || true)
    fail "the test binary does not start: $why"
  fi
  note "using the bundled C++ runtime (the machine's is older than the build machine's)"
fi

# A step's timeout: its own, or what is left of the script's budget when that is less (then at least
# 10 s, so that a step never starts only to be killed at once; `fail` when even that is not left).
# (It runs in a command substitution, so its failure line goes to stderr and the summary; set -e stops.)
capped() {
  local left=$((deadline - SECONDS))
  if ((left < 10)); then
    echo "run.sh: FAILED: the script's budget (SIEVE_GPU_BUDGET) is spent before the $2" | tee -a "$summary" >&2
    exit 1
  fi
  echo $(($1 < left ? $1 : left))
}

# Runs a command with the libraries above under a timeout, its output on stdout and in $OUT/<log>.
# Sets `status`, and `timed_out` to 1 when the timeout, not the command, ended it (a Catch2 binary
# exits with its count of failed assertions, which may be any number, 124 included).
run_step() {
  local limit=$1 log=$2 start=$SECONDS
  shift 2
  set +e
  LD_LIBRARY_PATH=$libpath timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$log"
  status=${PIPESTATUS[0]}
  set -e
  timed_out=$(((status == 124 || status == 137) && SECONDS - start >= limit))
}

# --- [cuda] tests ------------------------------------------------------------------------------------
test_timeout=$(capped "$test_timeout" "[cuda] tests")
note "[cuda] tests (timeout ${test_timeout}s)"
run_step "$test_timeout" cuda_tests.log "$tests" --require-gpu "[cuda]" --durations yes
if ((timed_out)); then
  fail "[cuda] tests timed out after ${test_timeout}s; see cuda_tests.log"
elif ((status == 77)) && grep -q "no usable CUDA GPU" "$OUT/cuda_tests.log"; then
  fail "[cuda] tests skipped: the test binary sees no usable CUDA GPU"
elif ((status != 0)); then
  fail "[cuda] tests failed (exit $status); see cuda_tests.log"
fi
note "[cuda] tests passed"

# --- Optional: out-of-bounds and misaligned accesses on the real device ------------------------------
if [[ ${SIEVE_GPU_SANITIZE:-0} == 1 ]]; then
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  [[ -x $sanitizer ]] || fail "SIEVE_GPU_SANITIZE=1 but compute-sanitizer is neither on the PATH nor in CUDA's bin"
  test_timeout=$(capped "$test_timeout" "compute-sanitizer run")
  note "compute-sanitizer memcheck on the [cuda] tests of MatMul and the kernels (timeout ${test_timeout}s)"
  run_step "$test_timeout" sanitizer.log "$sanitizer" --tool memcheck --error-exitcode 99 \
    "$tests" --require-gpu "[cuda][matmul],[cuda][kernels]"
  ((timed_out)) && fail "compute-sanitizer run timed out after ${test_timeout}s; see sanitizer.log"
  ((status == 0)) || fail "compute-sanitizer or the tests under it failed (exit $status); see sanitizer.log"
  note "compute-sanitizer found nothing"
fi

# --- GPU MatMul benchmark ----------------------------------------------------------------------------
if [[ ! -x $bench ]]; then
  note "sieve-bench is not in the bundle: GPU MatMul benchmark skipped"
  exit 0
fi
help=$(LD_LIBRARY_PATH=$libpath timeout 30 "$bench" --help 2>&1 || true)
if ! grep -q -- "--device" <<<"$help"; then
  note "sieve-bench has no --device flag: GPU MatMul benchmark skipped"
  exit 0
fi
bench_timeout=$(capped "$bench_timeout" "MatMul benchmark")
note "sieve-bench matmul --device cuda (timeout ${bench_timeout}s)"
run_step "$bench_timeout" bench.log "$bench" matmul --device cuda --json "$OUT/matmul_gpu.json"
((timed_out)) && fail "sieve-bench matmul timed out after ${bench_timeout}s; see bench.log"
((status == 0)) || fail "sieve-bench matmul failed (exit $status); see bench.log"
note "benchmark done: matmul_gpu.json"

# --- The zoo's benchmark matrix against PyTorch CUDA ----------------------------------------------------
# The peer script and the zoo come from this tree (the bundle holds binaries only); the data sets are not
# carried, so the models train on synthetic batches of their data's shape (the report says so per model).
if ! grep -q "^  zoo " <<<"$help"; then
  note "sieve-bench has no zoo verb: zoo matrix skipped"
  exit 0
fi
zoo_timeout=$(capped "$zoo_timeout" "zoo matrix")
read -r -a zoo_extra <<<"$zoo_args"
note "sieve-bench zoo --device cuda ${zoo_args} (timeout ${zoo_timeout}s)"
run_step "$zoo_timeout" zoo.log "$bench" zoo --device cuda "${zoo_extra[@]}" --zoo "$root/models" \
  --pytorch "$root/tools/bench/pytorch/peer.py" --json "$OUT/zoo_gpu.json" --markdown "$OUT/zoo_gpu.md"
((timed_out)) && fail "sieve-bench zoo timed out after ${zoo_timeout}s (its per-model tables are in zoo.log)"
((status == 0)) || fail "sieve-bench zoo failed (exit $status); see zoo.log"
note "zoo matrix done: zoo_gpu.json, zoo_gpu.md"
