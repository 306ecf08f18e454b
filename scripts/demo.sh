#!/usr/bin/env bash
# Installs what is missing, builds v4bench, and runs the main job: the headline KV-cache and
# FLOPs comparison of DeepSeek-V4-Pro and V4-Flash against V3.2. Prints where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target v4bench

db="${V4BENCH_DB:-runs/v4bench.db}"
report="runs/demo-report.md"
mkdir -p "$(dirname "$db")" runs
v4bench="$build/v4bench"

echo
echo "== KV cache and decode FLOPs per token vs DeepSeek-V3.2 (production formats: FP8 KV, FP4 index keys)"
"$v4bench" analyze --model v4-pro,v4-flash --vs v3.2 --ctx 4k,128k,1m --kv-format fp8 --db "$db"
headline_run=$("$v4bench" runs list --suite analyze --limit 1 --format csv --db "$db" | sed -n '2s/,.*//p')

echo
echo "== Same comparison with every cache in BF16 (reference layout)"
"$v4bench" analyze --model v4-pro,v4-flash --vs v3.2 --ctx 1m --kv-format bf16 --db "$db"

"$v4bench" runs show "$headline_run" --format md --db "$db" >"$report"
echo
echo "Results database: $db"
echo "Report:           $report   (v4bench runs show $headline_run --db $db)"
