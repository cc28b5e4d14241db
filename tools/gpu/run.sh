#!/usr/bin/env bash
# Runs THERE, on the lent GPU machine, from the repository root, with $OUT naming an empty output
# folder: checks the GPU, runs the [cuda] tests and then the GPU MatMul benchmark from the bundle that
# tools/gpu/bundle.sh made here, and writes everything to $OUT. Every step has a timeout and a failing
# step stops the run with a line that names it (in $OUT/summary.txt and on stdout); on a machine
# without a GPU it stops within seconds. It never builds anything: that machine has no packages.
#   SIEVE_GPU_BUNDLE        the bundle folder (default gpu-bundle/ in the repository root)
#   SIEVE_GPU_TEST_TIMEOUT  seconds for the [cuda] tests (default 300)
#   SIEVE_GPU_BENCH_TIMEOUT seconds for the benchmark (default 180)
#   SIEVE_GPU_SANITIZE=1    also run the [cuda] tests of MatMul and the kernels under compute-sanitizer
#                           memcheck after the plain run (output: sanitizer.log)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bundle=${SIEVE_GPU_BUNDLE:-$root/gpu-bundle}
test_timeout=${SIEVE_GPU_TEST_TIMEOUT:-300}
bench_timeout=${SIEVE_GPU_BENCH_TIMEOUT:-180}
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
note "sieve-bench matmul --device cuda (timeout ${bench_timeout}s)"
run_step "$bench_timeout" bench.log "$bench" matmul --device cuda --json "$OUT/matmul_gpu.json"
((timed_out)) && fail "sieve-bench matmul timed out after ${bench_timeout}s; see bench.log"
((status == 0)) || fail "sieve-bench matmul failed (exit $status); see bench.log"
note "benchmark done: matmul_gpu.json"
