#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (ctest). In CI (CI=true) or with
# V4B_SANITIZER_PASS=1 it then runs the checkpoint, tokenizer and store parsers' tests once more
# under AddressSanitizer + UBSan, since they read untrusted files (a second build: ~15 min on 2 cores).
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
(cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 900)

sanitize="${V4B_SANITIZER_PASS:-0}"
[ "${CI:-}" = "true" ] && sanitize="${V4B_SANITIZER_PASS:-1}"
if [ "$sanitize" = "1" ]; then
  asan="${build}-asan"
  cmake -S . -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DV4B_SANITIZE=ON -DV4B_BUILD_BENCHES=OFF >/dev/null
  cmake --build "$asan" -j "$jobs" --target v4b_tests
  "$asan/tests/v4b_tests" --gtest_brief=1 --gtest_filter='Safetensors*:Tokenizer*:WeightsBinder*:StoreTest.Corrupt*'
fi
