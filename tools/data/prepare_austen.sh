#!/usr/bin/env bash
# Prepares the Jane Austen text corpus for language models (runtime/data/text_corpus.h, docs/data.md):
# installs the Debian package r-cran-janeaustenr when it is missing, then runs prepare_austen.R, which
# writes the train/valid/test text, the word and character vocabularies and a manifest.
#
#   bash tools/data/prepare_austen.sh [DIR]
#
# DIR defaults to $SIEVE_DATA_DIR/austen when SIEVE_DATA_DIR is set and non-empty, else data/austen
# under the repository (git-ignored). Idempotent: a complete corpus (its manifest present) is left as
# it is. The corpus is written to a temporary folder beside DIR and renamed into place, so an
# interrupted run never leaves a half-written corpus behind. This script trains nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository="$(cd "$here/../.." && pwd)"
if (($# > 1)); then
  echo "usage: bash tools/data/prepare_austen.sh [DIR]" >&2
  exit 2
fi
if (($# == 1)); then
  dir="$1"
elif [[ -n "${SIEVE_DATA_DIR:-}" ]]; then
  dir="$SIEVE_DATA_DIR/austen"
else
  dir="$repository/data/austen"
fi

if [[ -f "$dir/manifest.tsv" ]]; then
  echo "prepare_austen: $dir is already prepared (remove it to prepare it again)"
  exit 0
fi
if [[ -e "$dir" ]] && ! { [[ -d "$dir" ]] && [[ -z "$(ls -A "$dir")" ]]; }; then
  echo "prepare_austen: $dir exists and is not an empty folder, and it has no manifest.tsv;" \
    "remove it or name another folder" >&2
  exit 1
fi

package=r-cran-janeaustenr
if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "prepare_austen: the Debian package $package is missing (run as root, or: apt-get install $package)" >&2
    exit 1
  fi
  echo "prepare_austen: installing $package"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "$package"; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$package"
  fi
fi

parent="$(dirname "$dir")"
mkdir -p "$parent"
staging="$(mktemp -d "$parent/.austen.tmp.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
LC_ALL=C.UTF-8 Rscript --vanilla "$here/prepare_austen.R" "$staging"
chmod 755 "$staging"
[[ -d "$dir" ]] && rmdir "$dir"  # empty, checked above
mv "$staging" "$dir"
trap - EXIT

echo "prepare_austen: wrote $dir"
sed 's/^/  /' "$dir/manifest.tsv"
