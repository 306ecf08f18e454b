#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (ctest), then the checkpoint and
# tokenizer parsers' tests once more under AddressSanitizer + UBSan (they read untrusted files).
# BUILD_DIR (default build), JOBS (default: all cores) and V4B_SANITIZER_PASS=0 (skip the second
# pass) may be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
build="${BUILD_DIR:-build}"
jobs="${JOBS:-$(nproc)}"
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON   # warnings are errors in CI

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DV4B_WERROR="$werror" >/dev/null
cmake --build "$build" -j "$jobs"
(cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 900)

if [ "${V4B_SANITIZER_PASS:-1}" != "0" ]; then
  asan="${build}-asan"
  cmake -S . -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DV4B_SANITIZE=ON -DV4B_BUILD_BENCHES=OFF >/dev/null
  cmake --build "$asan" -j "$jobs" --target v4b_tests
  "$asan/tests/v4b_tests" --gtest_brief=1 --gtest_filter='Safetensors*:Tokenizer*:WeightsBinder*:StoreTest.Corrupt*'
fi
