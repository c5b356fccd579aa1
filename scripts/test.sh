#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds fxd and runs every test suite.
# This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Paths under the checkout are hashed relative to it, so a fresh clone in
# another folder (as CI makes) still hits the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake --preset ci
cmake --build --preset ci
ctest --preset ci
