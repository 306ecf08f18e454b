#!/usr/bin/env bash
# Installs what is missing, builds v4bench, and runs the main job: how much KV cache and how many
# FLOPs per token DeepSeek-V4 needs against DeepSeek-V3.2 — projected for the published models and
# measured by the engine on the small synthetic presets. Prints where the results and report are.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target v4bench

db="${V4BENCH_DB:-runs/v4bench.db}"
out="runs/demo"
mkdir -p "$(dirname "$db")" "$out"
v4bench="$build/v4bench"
last_run() { "$v4bench" runs list --limit 1 --format csv --db "$db" | sed -n '2s/,.*//p'; }

echo
echo "== Analytic: KV cache and decode FLOPs per token vs DeepSeek-V3.2 (FP8 KV rows, FP4 index keys)"
"$v4bench" analyze --model v4-pro,v4-flash --vs v3.2 --ctx 4k,128k,1m --kv-format fp8 --db "$db"
runs=("$(last_run)")

echo
echo "== Suite kv: published models projected; small synthetic presets measured by the engine (synthesised on first use)"
"$v4bench" run kv --model v4-pro,v4-flash --vs v3.2 --ctx 4k,128k,1m --kv-format bf16,fp8 --db "$db"
runs+=("$(last_run)")
"$v4bench" run kv --model v4-small,v32-small,gqa-small --vs v3.2 --ctx 1k,4k --kv-format bf16,fp8 --progress --db "$db"
runs+=("$(last_run)")

echo
echo "== Suite flops: decode FLOPs per token, counted by the engine beside the analytic model"
"$v4bench" run flops --model v4-pro,v4-flash --vs v3.2 --ctx 4k,128k,1m --db "$db"
runs+=("$(last_run)")
"$v4bench" run flops --model v4-small,v32-small,gqa-small --vs v3.2 --ctx 1k,4k --progress --db "$db"
runs+=("$(last_run)")

"$v4bench" report "${runs[@]}" --db "$db" --svg-dir "$out" >"$out/report.md"
echo
echo "Results database: $db   (v4bench runs list --db $db)"
echo "Report:           $out/report.md, $out/kv_vs_ctx.svg, $out/flops_vs_ctx.svg"
