#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (ctest).
# BUILD_DIR (default build) and JOBS (default: all cores) may be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
build="${BUILD_DIR:-build}"
jobs="${JOBS:-$(nproc)}"
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON   # warnings are errors in CI

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DV4B_WERROR="$werror" >/dev/null
cmake --build "$build" -j "$jobs"
cd "$build"
ctest --output-on-failure -j "$jobs" --timeout 900
