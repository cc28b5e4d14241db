#!/usr/bin/env bash
# Runs HERE, on the build machine. Builds the CUDA configuration (sm_90 code plus compute_90 PTX) into
# build-gpu/ and packs what the lent GPU machine needs into the git-ignored folder gpu-bundle/: the test
# binary, sieve-bench when it exists, and every shared library they load except the CUDA stack (the GPU
# machine has its own, matching its driver) and glibc (which must be the running machine's). That
# machine has no Debian packages and no network, so it cannot build Sieve itself; tools/gpu/run.sh runs
# the bundle there. Ends by printing the `run` invocation that carries the bundle.
#   SIEVE_JOBS       parallel build jobs (default 2)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
build="build-gpu"
bundle="gpu-bundle"
limit_mib=60  # the tree and the carried paths must stay under 64 MiB together
jobs=${SIEVE_JOBS:-2}

echo "bundle: configuring $build/"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSIEVE_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" >/dev/null
targets=(sieve_tests)
if ninja -C "$build" -t query sieve-bench >/dev/null 2>&1; then
  targets+=(sieve-bench)
else
  echo "bundle: this tree has no sieve-bench target; bundling the tests only"
fi
echo "bundle: building ${targets[*]} with $jobs jobs"
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

binaries=("$build/tests/sieve_tests")
[[ -x $build/tools/bench/sieve-bench ]] && binaries+=("$build/tools/bench/sieve-bench")

rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/lib-gcc"
cp "${binaries[@]}" "$bundle/bin/"
# ldd lists direct and indirect dependencies as "name => path (address)". The C++ runtime goes to
# lib-gcc/: run.sh prefers the GPU machine's own where it is new enough, since ours needs glibc 2.36.
ldd "${binaries[@]}" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
  while read -r name path; do
    case "$name" in
      libcuda.so* | libcudart.so* | libcublas.so* | libcublasLt.so* | libnvidia* | libnvJitLink.so* | libnvrtc*) ;;
      libc.so* | libm.so* | libdl.so* | librt.so* | libpthread.so* | ld-linux* | libresolv.so* | libutil.so*) ;;
      libstdc++.so* | libgcc_s.so*) cp -L "$path" "$bundle/lib-gcc/$name" ;;
      *) cp -L "$path" "$bundle/lib/$name" ;;
    esac
  done
if ldd "${binaries[@]}" | grep -q "not found"; then
  echo "bundle: a library of the binaries is not found here:" >&2
  ldd "${binaries[@]}" | grep "not found" >&2
  exit 1
fi

bundle_bytes=$(du -sb "$bundle" | cut -f1)
# What the device tool sends: tracked and untracked-but-not-ignored files (du skips deleted ones).
tree_bytes=$({ git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null || true; } |
  tail -n 1 | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
libraries=("$bundle"/lib/* "$bundle"/lib-gcc/*)
echo "bundle: $bundle/ holds $(cd "$bundle/bin" && echo *) and ${#libraries[@]} libraries:" \
  "$(mib "$bundle_bytes"); the working tree is $(mib "$tree_bytes")"
ls -l "$bundle/bin" "$bundle/lib" "$bundle/lib-gcc"
if ((bundle_bytes >= limit_mib << 20)); then
  echo "bundle: $bundle/ is over ${limit_mib} MiB; the GPU machine will not accept it" >&2
  exit 1
fi
if ((bundle_bytes + tree_bytes >= 64 << 20)); then
  echo "bundle: bundle and working tree together are over 64 MiB; the GPU machine will not accept them" >&2
  exit 1
fi

cat <<'EOF'

bundle: ready. On the GPU machine, from the repository root (the device tool's `run`):
  run(command="bash tools/gpu/run.sh", carry=["gpu-bundle"], timeout_s=540)
Its logs come back from $OUT: summary.txt, nvidia-smi.txt, cuda_tests.log, bench.log, matmul_gpu.json,
zoo.log, zoo_gpu.json, zoo_gpu.md.
EOF
