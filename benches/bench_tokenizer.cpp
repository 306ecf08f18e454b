// Encode throughput of the DeepSeek tokenizer on the eight haystack novels (4.9 MB of English prose):
// one thread, then all cores with each thread encoding its own share of the novels. bytes_per_second
// counts input bytes. "warm" reuses each thread's word cache across iterations (steady state);
// "cold" empties it first, as a one-shot `v4bench tokenize` sees it.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/io/tokenizer.h"

namespace {

namespace fs = std::filesystem;

struct Corpus {
  v4b::Tokenizer tok = v4b::Tokenizer::load();
  std::vector<std::string> novels;
  int64_t bytes = 0;
  Corpus() {
    const fs::path dir = v4b::datasets_dir() / "haystack";
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".txt") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      novels.push_back(ss.str());
      bytes += static_cast<int64_t>(novels.back().size());
    }
  }
};

const Corpus& corpus() {
  static const Corpus kCorpus;
  return kCorpus;
}

// Novels dealt to `threads` shares, largest first to the lightest share, so the shares are even.
std::vector<std::vector<size_t>> deal(const Corpus& c, size_t threads) {
  std::vector<size_t> order(c.novels.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return c.novels[a].size() > c.novels[b].size(); });
  std::vector<std::vector<size_t>> shares(threads);
  std::vector<size_t> load(threads, 0);
  for (const size_t i : order) {
    const size_t t = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    shares[t].push_back(i);
    load[t] += c.novels[i].size();
  }
  return shares;
}

int64_t encode_share(const Corpus& c, const std::vector<size_t>& share, bool cold) {
  if (cold) c.tok.clear_thread_cache();
  int64_t tokens = 0;
  for (const size_t i : share) tokens += static_cast<int64_t>(c.tok.encode(c.novels[i]).size());
  return tokens;
}

// range(0): threads; range(1): 1 = cold cache. The worker threads live across iterations, so a warm
// run really reuses each thread's cache; the calling thread encodes share 0.
void BM_EncodeNovels(benchmark::State& state) {
  const Corpus& c = corpus();
  if (c.novels.empty()) {
    state.SkipWithError("no novels in datasets/haystack");
    return;
  }
  const auto threads = static_cast<size_t>(state.range(0));
  const bool cold = state.range(1) != 0;
  const auto shares = deal(c, threads);
  std::vector<int64_t> counts(threads, 0);
  std::barrier start(static_cast<std::ptrdiff_t>(threads)), done(static_cast<std::ptrdiff_t>(threads));
  std::atomic<bool> stop{false};
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t)
    pool.emplace_back([&, t] {
      while (true) {
        start.arrive_and_wait();
        if (stop) return;
        counts[t] += encode_share(c, shares[t], cold);
        done.arrive_and_wait();
      }
    });
  for (auto _ : state) {
    start.arrive_and_wait();
    counts[0] += encode_share(c, shares[0], cold);
    done.arrive_and_wait();
  }
  stop = true;
  start.arrive_and_wait();
  for (auto& th : pool) th.join();
  int64_t tokens = 0;
  for (const int64_t n : counts) tokens += n;
  state.SetBytesProcessed(state.iterations() * c.bytes);
  state.counters["MB"] = benchmark::Counter(static_cast<double>(c.bytes) / 1e6, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

void thread_counts(benchmark::internal::Benchmark* b) {
  const auto n = static_cast<int64_t>(std::max(2u, std::thread::hardware_concurrency()));
  for (const int64_t cold : {0, 1}) {
    b->Args({1, cold});
    b->Args({n, cold});
  }
}
BENCHMARK(BM_EncodeNovels)->Apply(thread_counts)->ArgNames({"threads", "cold"})->UseRealTime()->Unit(benchmark::kMillisecond);

// Loading the shipped tokenizer.json.gz (gunzip, JSON parse, vocabulary and merge tables).
void BM_LoadTokenizer(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(v4b::Tokenizer::load().vocab_size());
}
BENCHMARK(BM_LoadTokenizer)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
