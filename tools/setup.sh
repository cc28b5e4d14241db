#!/usr/bin/env bash
# Installs everything Sieve needs to build and test: Debian packages, then the interop tests' Python venv.
# Idempotent: when every package is already present it changes nothing and returns at once.
# The CUDA toolkit (nvcc, cuBLAS) is not a Debian package here; it is used when /usr/local/cuda exists.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-openmp-dev  # BLAS GEMM for the CPU backend (OpenMP threading, shared with our kernels)
  libeigen3-dev        # vectorised elementwise kernels
  libprotobuf-dev protobuf-compiler  # model and solver definitions
  libonnx-dev          # the ONNX schema (onnx/onnx.proto) for `sieve export`
  libspdlog-dev        # logging
  catch2               # unit tests (Catch2 v2)
  zlib1g-dev           # gzip-compressed IDX datasets
  dataset-fashion-mnist  # the default dataset
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages: ${missing[*]} (run as root, or install them with apt-get)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

bash "$(dirname "${BASH_SOURCE[0]}")/setup_python.sh"  # the Python packages of the interop tests
