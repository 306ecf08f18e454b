// Prompt generation rate of the recall suite: the eleven RULER tasks (and the NIAH grid) at 32k and
// 128k target tokens, on all cores. The goal: 11 tasks x 100 samples at 32k in under a minute.
//   build/benches/bench_recall --benchmark_filter=Ruler/32768/100   (the full goal, one iteration)
#include <benchmark/benchmark.h>

#include "evals/backends/token_codec.h"
#include "evals/suites/recall/generators.h"

namespace rc = v4b::evals::recall;

namespace {

const v4b::evals::LocalCodec& tok() {
  static const v4b::evals::LocalCodec t(v4b::Tokenizer::load());
  return t;
}

// args: ctx, samples per task. Each iteration uses a new seed, so no haystack size is cached.
void Ruler(benchmark::State& state) {
  const int64_t ctx = state.range(0);
  const int samples = static_cast<int>(state.range(1));
  const rc::Generator gen(tok(), rc::niah_template("default"));
  uint64_t seed = 1;
  int64_t prompts = 0, tokens = 0;
  for (auto _ : state) {
    std::vector<rc::SampleSpec> specs;
    for (const auto& t : rc::expand_tasks("ruler"))
      for (int i = 0; i < samples; ++i) specs.push_back({t, ctx, -1, i, seed, 0});
    ++seed;
    for (const auto& s : gen.generate_all(specs, 0)) tokens += static_cast<int64_t>(s.ids.size()), ++prompts;
  }
  state.counters["prompts_per_s"] = benchmark::Counter(static_cast<double>(prompts), benchmark::Counter::kIsRate);
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}
BENCHMARK(Ruler)->Args({32768, 10})->Args({32768, 100})->Args({131072, 5})->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// The NIAH grid: 11 depths x samples at one length.
void NiahGrid(benchmark::State& state) {
  const int64_t ctx = state.range(0);
  const rc::Generator gen(tok(), rc::niah_template("default"));
  gen.generate({"niah", ctx, 50, 0, 0, 0});  // tokenises the novels once, outside the timing
  uint64_t seed = 1;
  int64_t prompts = 0, tokens = 0;
  for (auto _ : state) {
    std::vector<rc::SampleSpec> specs;
    for (double d : rc::depth_points(11, false))
      for (int i = 0; i < 10; ++i) specs.push_back({"niah", ctx, d, i, seed, 0});
    ++seed;
    for (const auto& s : gen.generate_all(specs, 0)) tokens += static_cast<int64_t>(s.ids.size()), ++prompts;
  }
  state.counters["prompts_per_s"] = benchmark::Counter(static_cast<double>(prompts), benchmark::Counter::kIsRate);
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}
BENCHMARK(NiahGrid)->Arg(32768)->Arg(131072)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
