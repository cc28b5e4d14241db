#!/usr/bin/env bash
# Installs PyTorch as the benchmark peer of `sieve-bench` (Debian's python3-torch, CPU build, for the
# system interpreter /usr/bin/python3). PyTorch is a benchmark peer, never a build or test dependency:
# CI does not run this. --no-install-recommends keeps it to the runtime (the recommends pull ~900 MB).
# Idempotent: does nothing when torch already imports. Needs root (or sudo) and the Debian archive.
set -euo pipefail

if /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  echo "setup_pytorch: torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') already installed"
  exit 0
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup_pytorch: needs root or sudo" >&2; exit 1; }
  as_root=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show python3-torch >/dev/null 2>&1; then
  "${as_root[@]}" apt-get update
fi
"${as_root[@]}" apt-get install -y --no-install-recommends python3-torch
echo "setup_pytorch: torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') installed"
