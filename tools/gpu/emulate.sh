#!/usr/bin/env bash
# Runs HERE, on a machine without a GPU, before device time is spent: builds the [cuda] tests of the
# cuBLAS MatMul, the CUDA gather/scatter kernels and device memory against the host emulation of the
# CUDA runtime and cuBLAS in tools/gpu/emulate/, with AddressSanitizer and UBSan, and runs them.
# What it checks: the backend's host logic (plans, strided views, scratch use, tile classes), every
# cuBLAS argument, launch configurations, copy directions, and the kernels' index arithmetic, element
# by element. What it cannot: timing, races, or anything the real device does differently; the lent
# GPU machine (tools/gpu/run.sh) stays the judge. Build output goes to build-emu/ (git-ignored).
#   emulate.sh [catch2 test spec...]   default "[cuda]"
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out=build-emu
mkdir -p "$out/gen"

# What the three test files link against; a link error naming a missing symbol means a source moved.
library=(
  framework/cuda_context.cc framework/device.cc framework/logging.cc framework/memory.cc framework/memory_cuda.cc
  framework/status.cc framework/tensor.cc ops/check.cc
  ops/kernels/gather_scatter.cc ops/kernels/gather_scatter_cpu.cc ops/kernels/gather_scatter_ref.cc
  ops/matmul/matmul.cc ops/matmul/matmul_cpu.cc ops/matmul/matmul_ref.cc ops/matmul/pattern.cc
)
cuda=(ops/kernels/gather_scatter_cuda.cu ops/matmul/matmul_cuda.cu)
tests=(tests/test_main.cc tests/framework/memory_cuda_test.cc tests/ops/kernels/gather_scatter_cuda_test.cc
  tests/ops/matmul/matmul_cuda_test.cc)

# nvcc's launch syntax is the one thing a host compiler cannot parse: `kernel<<<grid, block, ...>>>(`
# becomes `EmulateLaunch(grid, block, &kernel, `, keeping the line count so diagnostics point home.
cat >"$out/rewrite.py" <<'PY'
import re, sys
source = open(sys.argv[1]).read()
launch = re.compile(r'(\w+(?:<[^<>;]*>)?)\s*<<<\s*([^,]+?)\s*,\s*([^,>]+?)\s*(?:,[^>]*)?>>>\(')
def emulated(m):
    return 'EmulateLaunch(%s, %s, &%s, %s' % (m.group(2), m.group(3), m.group(1), '\n' * m.group(0).count('\n'))
text = launch.sub(emulated, source).replace('#pragma unroll', '')
open(sys.argv[2], 'w').write('#line 1 "%s"\n' % sys.argv[1] + text)
PY

# GCC's maybe-uninitialized warnings are noise under the sanitizers (Catch2's regex code, mostly).
flags="-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fopenmp"
flags+=" -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-maybe-uninitialized"
flags+=" -DSIEVE_WITH_CUDA=1 -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL -DSPDLOG_SHARED_LIB -DFMT_SHARED"
flags+=" -I$root/tools/gpu/emulate -I$root -I/usr/include/x86_64-linux-gnu/openblas-openmp -isystem /usr/include/eigen3"
{
  echo "builddir = $out"
  echo "flags = $flags"
  echo "rule cxx"
  echo "  command = g++ \$flags -MMD -MF \$out.d -c \$in -o \$out"
  echo "  description = CXX \$in"
  echo "  depfile = \$out.d"
  echo "  deps = gcc"
  echo "rule rewrite"
  echo "  command = python3 $out/rewrite.py \$in \$out"
  echo "  description = REWRITE \$in"
  echo "rule link"
  echo "  command = g++ -fsanitize=address,undefined -fopenmp -o \$out \$in" \
    "-L/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas -lspdlog -lfmt"
  echo "  description = LINK \$out"
  objects=()
  for source in "${library[@]}" "${tests[@]}"; do
    echo "build $out/obj/${source%.*}.o: cxx $source"
    objects+=("$out/obj/${source%.*}.o")
  done
  for source in "${cuda[@]}"; do
    echo "build $out/gen/${source%.cu}.cc: rewrite $source | $out/rewrite.py"
    echo "build $out/obj/${source%.cu}.o: cxx $out/gen/${source%.cu}.cc"
    objects+=("$out/obj/${source%.cu}.o")
  done
  echo "build $out/sieve_tests_emulated: link ${objects[*]}"
} >"$out/build.ninja"

ninja -f "$out/build.ninja" -j "${SIEVE_JOBS:-2}"
# The caching allocator and the scratch buffers keep their blocks until exit by design.
ASAN_OPTIONS=detect_leaks=0 "$out/sieve_tests_emulated" "${@:-[cuda]}"
