// LUT dequantisation throughput. Bytes counted are the compressed input bytes read per second, so
// the numbers compare directly with weight-streaming bandwidth.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "engine/core/dtypes.h"
#include "engine/core/qdq.h"

namespace {

std::vector<uint8_t> random_bytes(size_t n) {
  std::mt19937 rng(1);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

void BM_DecodeE4m3(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  const auto src = random_bytes(n);
  std::vector<float> dst(n);
  for (auto _ : state) {
    v4b::decode_e4m3_scaled(src.data(), 0.5f, dst.data(), n);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
  state.counters["elem/s"] = benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeE4m3)->Arg(4096)->Arg(1 << 20);

void BM_DecodeE2m1Packed(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));  // elements; n / 2 bytes
  const auto src = random_bytes(n / 2);
  std::vector<float> dst(n);
  for (auto _ : state) {
    v4b::decode_e2m1_packed(src.data(), dst.data(), n);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n / 2));
  state.counters["elem/s"] = benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeE2m1Packed)->Arg(4096)->Arg(1 << 20);

void BM_ActQuant(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> codes(n), scales(n / v4b::kActQuantBlock);
  for (auto _ : state) {
    v4b::act_quant(x, codes, scales);
    benchmark::DoNotOptimize(codes.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * sizeof(float)));
}
BENCHMARK(BM_ActQuant)->Arg(7168);

void BM_Hadamard128(benchmark::State& state) {
  std::vector<float> x(64 * 128, 0.25f);  // 64 indexer heads
  for (auto _ : state) {
    v4b::hadamard_128(x);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * x.size() * sizeof(float)));
}
BENCHMARK(BM_Hadamard128);

}  // namespace

BENCHMARK_MAIN();
