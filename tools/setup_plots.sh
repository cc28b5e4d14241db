#!/usr/bin/env bash
# Installs what the plot scripts of tools/plots/ need (matplotlib, from Debian). Not needed to build or
# test Sieve (tools/setup.sh does that). Idempotent: when the package is already present it changes
# nothing and returns at once.
set -euo pipefail

package=python3-matplotlib
if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "setup_plots: $package is missing (run as root, or install it with apt-get)" >&2
  exit 1
fi
echo "setup_plots: installing $package"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$package"
