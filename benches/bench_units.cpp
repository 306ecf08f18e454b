#include <benchmark/benchmark.h>

#include "common/units.h"

static void BM_ParseSizeList(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(v4b::parse_size_list("4k,16k,32k,128k,1m"));
}
BENCHMARK(BM_ParseSizeList);
BENCHMARK_MAIN();
