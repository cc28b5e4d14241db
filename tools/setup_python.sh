#!/usr/bin/env bash
# Installs the Python packages of Sieve's interop tests (the real readers of the files Sieve writes) into a
# virtualenv outside the work tree, /opt/sieve-venv unless SIEVE_VENV names another folder. Called by
# tools/setup.sh; the tests find the interpreter through the CMake cache variable SIEVE_PYTHON, which defaults
# to the same path. Idempotent: when the venv already holds this exact package list it returns at once.
# Not here: the Debian packages of the build (tools/setup.sh).
set -euo pipefail

# The packages, pinned, in one place. A change here reinstalls on the next run.
python_packages=(
  tensorboard==2.20.0  # reads the TensorBoard event files of `sieve train` (tests/interop/test_tensorboard.py)
  onnx==1.23.2 onnxruntime==1.31.1 numpy==2.4.6  # check and run `sieve export` models (tests/interop/test_onnx.py)
)

venv=${SIEVE_VENV:-/opt/sieve-venv}
stamp="$venv/.sieve-packages"
wanted=$(printf '%s\n' "${python_packages[@]}")

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  exit 0
fi

if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup_python: python3-venv is missing (run as root, or install it with apt-get)" >&2
    exit 1
  fi
  echo "setup_python: installing python3-venv"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-venv
fi

echo "setup_python: installing ${python_packages[*]} into $venv"
[[ -x "$venv/bin/python" ]] || /usr/bin/python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${python_packages[@]}"
echo "$wanted" >"$stamp"
