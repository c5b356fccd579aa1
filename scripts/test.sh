#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds fxd and runs every test, in three stages:
#   1. the optimised build (ci preset): every suite, fault injection and soak;
#   2. the same code with AddressSanitizer and UndefinedBehaviorSanitizer
#      (debug-sanitize preset): every suite but the soak (stage 1 ran it);
#   3. the libFuzzer targets, built with Clang, each for a bounded time.
# This is the README's test command and what CI runs. Environment:
#   FXD_SOAK_SECONDS   soak length (default 100)
#   FXD_FUZZ_SECONDS   seconds per fuzz target (default 12)
#   FXD_TEST_STAGES    which stages to run (default "release sanitize fuzz")
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh --test
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
# Paths under the checkout are hashed relative to it, so a fresh clone in
# another folder (as CI makes) still hits the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
stages="${FXD_TEST_STAGES:-release sanitize fuzz}"

stage() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

if [[ " $stages " == *" release "* ]]; then
  stage "optimised build: every suite"
  cmake --preset ci
  cmake --build --preset ci
  ctest --preset ci
fi
if [[ " $stages " == *" sanitize "* ]]; then
  stage "ASan + UBSan build: every suite but the soak"
  cmake --preset debug-sanitize
  cmake --build --preset debug-sanitize
  ctest --preset debug-sanitize -LE soak
fi
if [[ " $stages " == *" fuzz "* ]]; then
  stage "fuzzers, ${FXD_FUZZ_SECONDS:-12} s each"
  ./scripts/fuzz.sh "${FXD_FUZZ_SECONDS:-12}"
fi
stage "all passed"
