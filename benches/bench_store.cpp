// Throughput of the results store: one committed case (10 metrics, one sample) per iteration,
// WAL with synchronous=NORMAL as in real runs, on a temporary database.
#include <benchmark/benchmark.h>

#include <stdlib.h>

#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "reports/store/store.h"

namespace {

namespace fs = std::filesystem;

fs::path make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "v4b_bench_store_XXXXXX").string();
  if (!mkdtemp(tmpl.data())) return {};
  return tmpl;
}

void BM_CommitCase(benchmark::State& state) {
  fs::path dir = make_temp_dir();
  if (dir.empty()) {
    state.SkipWithError("cannot create a temporary directory");
    return;
  }
  {
    v4b::store::Store store((dir / "bench.db").string());
    int64_t run_id = store.create_run({.suite = "bench", .model = "none", .params = {{"n", 1}}});
    v4b::store::CaseRecord c;
    c.params = {{"ctx", 4096}, {"batch", 8}};
    c.wall_s = 1.0;
    for (int i = 0; i < 10; ++i) c.metrics.push_back({fmt::format("metric_{}", i), i * 0.5, "ms"});
    c.samples.push_back({0, {{"tokens", 128}}});
    int64_t n = 0;
    for (auto _ : state) {
      c.key = fmt::format("case={}", n++);  // keys must be unique within the run
      store.commit_case(run_id, c);
    }
    state.counters["cases"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}
BENCHMARK(BM_CommitCase)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
