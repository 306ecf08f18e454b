#!/usr/bin/env bash
# Installs what is missing, builds v4bench, and runs the demo plan (plans/demo.json) end to end on
# the embedded models: KV bytes and FLOPs per token of DeepSeek-V4 against V3.2 (projected for the
# published models, measured on the small presets), recall on the v4-probe with native, dense and
# window attention, logit fidelity, coding pass@k with the oracle and the engine, and in-process
# serving throughput. Writes one HTML report and prints where it and the database are.
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

echo
echo "== Plan demo: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["description"])' plans/demo.json)"
"$v4bench" run --plan plans/demo.json --progress --format json --db "$db" >"$out/plan.json"
mapfile -t runs < <(python3 -c 'import json,sys; [print(r["run_id"]) for r in json.load(open(sys.argv[1]))["runs"]]' "$out/plan.json")

"$v4bench" report "${runs[@]}" --db "$db" --format md --svg-dir "$out" --out "$out/report.md" 2>/dev/null
"$v4bench" report "${runs[@]}" --db "$db" --format html --out "$out/report.html" 2>/dev/null
echo
sed -n '/^## Headline/,/^## Run/p' "$out/report.md" | sed '$d'
echo "Results database: $db   (v4bench runs list --db $db; runs ${runs[*]})"
echo "Report:           $out/report.html   (Markdown: $out/report.md, figures: $out/*.svg)"
