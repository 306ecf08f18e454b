// GEMV and GEMM speed per weight layout, as a percentage of this machine's probed ceilings.
//   GEMV: a 14336 x 4096 matrix (Llama-3-8B / V4-Flash-sized FFN projection), one token; GB/s of
//         weights read vs probed DRAM read bandwidth. Several copies rotate so the weights never
//         sit in L3.
//   GEMM: the same matrix at batch 8..512 (8..32: batched decode of several sessions); GFLOP/s vs
//         probed fp32 FMA peak.
//   gemv_l2: the GEMV kernels on a matrix that stays in L2, i.e. their compute speed alone.
//   attention: one block of the blocked attention on one thread, at the models' shapes; _picks: rows
//              scattered over the store, as CSA's indexer picks them.
//   index: V4 lightning-indexer scoring of 64 queries x 16 heads x 128 dims against 4096 keys, fused
//          (index_scores_bf16) and as matmul_bf16_exact followed by the ReLU-weighted head sum.
//   top_k: the indexer's pick of 512 of n scores for one query (TopKOrder::kByIndex), one thread.
// Run: build/benches/bench_matmul [--benchmark_filter=...]; V4BENCH_ISA=avx2|generic selects a path.
#include <chrono>
#include <random>
#include <tuple>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "engine/core/thread_pool.h"
#include "engine/kernels/cpu/attention.h"
#include "engine/kernels/cpu/machine_probe.h"
#include "engine/kernels/cpu/matmul.h"
#include "engine/kernels/cpu/ops.h"

using namespace v4b;

namespace {

constexpr int64_t kRows = 14336, kCols = 4096;

struct Weights {
  std::vector<uint8_t> data, scales;
  WeightMatrix w;
};

Weights make(WeightLayout layout, uint32_t seed, int64_t rows = kRows, int64_t cols = kCols) {
  Weights t;
  t.w = {layout, rows, cols, nullptr, nullptr};
  std::mt19937 rng(seed);
  t.data.resize(t.w.data_bytes());
  t.scales.resize(t.w.scale_bytes());
  auto* words = reinterpret_cast<uint32_t*>(t.data.data());
  for (size_t i = 0; i < t.data.size() / 4; ++i) words[i] = rng() & 0x3E3E3E3Eu;  // finite values in every layout
  if (layout == WeightLayout::kFp8F32)
    for (size_t i = 0; i < t.scales.size() / 4; ++i) reinterpret_cast<float*>(t.scales.data())[i] = 0.01f;
  else
    for (auto& s : t.scales) s = 120;
  t.w.data = t.data.data();
  t.w.scales = t.scales.empty() ? nullptr : t.scales.data();
  return t;
}

const MachineCeilings& ceilings() {
  static const MachineCeilings c = cached_or_probe(default_pool());
  return c;
}

void run(benchmark::State& state, WeightLayout layout, int64_t m, bool bf16_act = false) {
  const MachineCeilings& ceil = ceilings();
  const int64_t bytes = WeightMatrix{layout, kRows, kCols}.data_bytes() + WeightMatrix{layout, kRows, kCols}.scale_bytes();
  const int copies = m == 1 ? static_cast<int>(std::max<int64_t>(1, (256ll << 20) / bytes)) : 1;
  std::vector<Weights> ws;
  for (int i = 0; i < copies; ++i) ws.push_back(make(layout, 17 + i));
  std::vector<float> x(m * kCols, 0.25f), y(m * kRows);
  KernelContext ctx{&default_pool(), nullptr, CpuIsa::kAuto};
  ctx.bf16_activations = bf16_act;
  int64_t iter = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    matmul(ctx, FlopCategory::kWeightGemm, x.data(), m, ws[iter++ % copies].w, y.data());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(y.data());
  }
  const double n = static_cast<double>(state.iterations());
  const double gbps = bytes * n / seconds / 1e9, gflops = 2.0 * m * kRows * kCols * n / seconds / 1e9;
  state.counters["GB/s"] = gbps;
  state.counters["GFLOP/s"] = gflops;
  if (m == 1) state.counters["%DRAM"] = 100 * gbps / ceil.read_gbps_dram;
  else if (bf16_act) state.counters["%BF16dot"] = 100 * gflops / (2 * ceil.fma_gflops);  // vdpbf16ps: 2 multiply-adds per FMA lane
  else state.counters["%FMA"] = 100 * gflops / ceil.fma_gflops;
  state.SetLabel(fmt::format("{} threads, {}; ceilings {:.1f} GB/s, {:.0f} GFLOP/s", default_pool().size(),
                             cpu_isa_name(best_cpu_isa()), ceil.read_gbps_dram, ceil.fma_gflops));
}

// The GEMV kernels' own speed: a 512 x 1024 matrix read again and again from L2 (no DRAM), one
// token, BF16 activations where the layout has the dot-product kernel. GB/s of weights; at or
// above the DRAM ceiling a kernel cannot be what limits decode.
void run_resident(benchmark::State& state, WeightLayout layout, bool bf16_act) {
  const Weights w = make(layout, 5, 512, 1024);
  std::vector<float> x(1024, 0.25f), y(512);
  KernelContext ctx{&default_pool(), nullptr, CpuIsa::kAuto};
  ctx.bf16_activations = bf16_act;
  for (auto _ : state) {
    matmul(ctx, FlopCategory::kWeightGemm, x.data(), 1, w.w, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.w.data_bytes() + w.w.scale_bytes()) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["xDRAM"] = benchmark::Counter(static_cast<double>(w.w.data_bytes() + w.w.scale_bytes()) * state.iterations() / 1e9 /
                                                   ceilings().read_gbps_dram,
                                               benchmark::Counter::kIsRate);
  state.SetLabel(fmt::format("{} threads", default_pool().size()));
}

// One online-softmax attention block on one thread (engine/kernels/cpu/attention.h): m query rows
// against n key/value rows of dk dims; GFLOP/s (4·m·n·dk) vs one core's share of the FMA peak, or
// with BF16 operands (add_bf16, as under bf16_activations) vs its share of the BF16 dot peak (2x).
// stride > 1 (BF16 only): n rows picked every stride-th of a larger store, as CSA's picks are.
void run_attention(benchmark::State& state, int64_t m, int64_t n, int64_t dk, bool bf16, int64_t stride = 1) {
  std::vector<float> q(m * dk, 0.01f), kv(n * stride * dk, 0.02f);
  std::vector<uint16_t> q16(m * dk, float_to_bf16(0.01f).bits);
  Bf16KvRows kv16;
  std::vector<int32_t> idx(n);
  if (bf16) {
    kv16.resize(n * stride, dk);
    for (int64_t j = 0; j < n * stride; ++j) kv16.set_row(j, kv.data() + j * dk);
    for (int64_t j = 0; j < n; ++j) idx[j] = static_cast<int32_t>(j * stride);
  }
  OnlineAttention att;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    att.reset(m, dk);
    if (bf16) att.add_bf16(CpuIsa::kAuto, q16.data(), dk, kv16, idx.data(), n, 0.05f);
    else att.add(CpuIsa::kAuto, q.data(), dk, dk, kv.data(), kv.data(), dk, n, 0.05f);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double gflops = 4.0 * m * n * dk * static_cast<double>(state.iterations()) / seconds / 1e9;
  state.counters["GFLOP/s"] = gflops;
  state.counters[bf16 ? "%BF16dot_core" : "%FMA_core"] = 100 * gflops * default_pool().size() / ((bf16 ? 2 : 1) * ceilings().fma_gflops);
}

// The indexer's scoring of one query block (the V4 shapes; values exact in BF16, and 8-bit
// integers times a power of two per row, as V4's), all threads: fused BF16, the BF16 product then
// the sum, or the int8 kernel on keys kept as integers (as V4 keeps them beside its cache).
enum class IndexPath { kFused, kProductThenSum, kInt8 };
void run_index(benchmark::State& state, IndexPath path) {
  const bool fused = path == IndexPath::kFused;
  constexpr int64_t nq = 64, heads = 16, n = 4096, k = 128;
  std::mt19937 rng(3);
  auto exact = [&](int64_t count) {  // per 128-value row: integers up to ±6 times 2^-1..2^-4
    std::vector<float> v(count);
    for (float& x : v) x = std::ldexp(static_cast<float>(static_cast<int>(rng() % 13) - 6), -1 - static_cast<int>(rng() % 4));
    return v;
  };
  const std::vector<float> q = exact(nq * heads * k), keys = exact(n * k), w = exact(nq * heads);
  std::vector<float> scores(nq * n), dots(path == IndexPath::kProductThenSum ? nq * heads * n : 0);
  IndexKeysInt8 keys8;
  if (path == IndexPath::kInt8) {
    keys8.reset(k);
    for (int64_t r = 0; r < n; ++r) keys8.push_back(keys.data() + r * k);
    if (!keys8.usable() || !index_int8_supported({}, heads, k)) {
      state.SkipWithError("index_scores_int8 needs AVX512-VNNI");
      return;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (path == IndexPath::kInt8) {
      index_scores_int8({}, q.data(), nq, heads, w.data(), keys8, n, scores.data(), n);
    } else if (fused) {
      if (!index_scores_bf16({}, q.data(), nq, heads, w.data(), keys.data(), n, k, scores.data(), n)) {
        state.SkipWithError("index_scores_bf16 needs AVX512-BF16");
        return;
      }
    } else {
      matmul_bf16_exact({}, FlopCategory::kIndexerScore, q.data(), nq * heads, keys.data(), n, k, dots.data());
      default_pool().parallel_for(nq, 8, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          float* sc = scores.data() + i * n;
          std::fill_n(sc, n, 0.0f);
          for (int64_t h = 0; h < heads; ++h)
            for (int64_t r = 0; r < n; ++r) sc[r] += w[i * heads + h] * std::max(dots[(i * heads + h) * n + r], 0.0f);
        }
      });
    }
    benchmark::DoNotOptimize(scores.data());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double gflops = 2.0 * nq * heads * n * k * static_cast<double>(state.iterations()) / seconds / 1e9;
  state.counters["GFLOP/s"] = gflops;
  state.counters["%BF16dot"] = 100 * gflops / (2 * ceilings().fma_gflops);  // int8 can reach 200
}

// Scores shaped like the indexer's: a weighted sum of 16 heads' ReLU'd dot products.
void run_top_k(benchmark::State& state, int64_t n) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dot(0.0f, 1.0f);
  constexpr int64_t kQueries = 16;  // several queries' scores, so one is not always in L1
  std::vector<float> scores(kQueries * n);
  for (float& s : scores) {
    s = 0;
    for (int h = 0; h < 16; ++h) s += 0.0625f * std::max(dot(rng), 0.0f);
  }
  int64_t q = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(top_k({}, scores.data() + q * n, n, 512, TopKOrder::kByIndex));
    q = (q + 1) % kQueries;
  }
  state.counters["ns/score"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                                              benchmark::Counter::kInvert);
}

void register_all() {
  for (auto [name, path] : {std::pair<const char*, IndexPath>{"fused", IndexPath::kFused},
                            {"product_then_sum", IndexPath::kProductThenSum},
                            {"int8", IndexPath::kInt8}})
    benchmark::RegisterBenchmark(fmt::format("index/{}/q64h16k128/n4096", name).c_str(),
                                 [path = path](benchmark::State& s) { run_index(s, path); })
        ->UseRealTime()
        ->MinTime(0.5);
  for (int64_t n : {4096, 16384, 65536})
    benchmark::RegisterBenchmark(fmt::format("top_k/k512/n{}", n).c_str(), [n](benchmark::State& s) { run_top_k(s, n); })
        ->MinTime(0.5);
  // V4 decode / CSA query (8 heads x 640 rows x 512), V3.2 DSA query (8 x 2048 x 576), a GQA block (32 queries x 4 heads
  // x 256 keys x 64), and one L2-resident block of V4 prefill rows (8 heads x 256 x 512).
  for (auto [m, n, dk] : {std::tuple<int64_t, int64_t, int64_t>{8, 640, 512}, {8, 2048, 576}, {128, 256, 64}, {8, 256, 512}})
    benchmark::RegisterBenchmark(fmt::format("attention/m{}/n{}/d{}", m, n, dk).c_str(),
                                 [m = m, n = n, dk = dk](benchmark::State& s) { run_attention(s, m, n, dk, false); })
        ->UseRealTime()
        ->MinTime(0.5);
  for (auto [m, n, dk] : {std::tuple<int64_t, int64_t, int64_t>{8, 640, 512}, {8, 128, 512}, {4, 128, 512}})
    benchmark::RegisterBenchmark(fmt::format("attention_bf16/m{}/n{}/d{}", m, n, dk).c_str(),
                                 [m = m, n = n, dk = dk](benchmark::State& s) { run_attention(s, m, n, dk, true); })
        ->UseRealTime()
        ->MinTime(0.5);
  // A CSA query's 128-row block of picks, every third row of the store.
  benchmark::RegisterBenchmark("attention_bf16_picks/m8/n128/d512", [](benchmark::State& s) { run_attention(s, 8, 128, 512, true, 3); })
      ->UseRealTime()
      ->MinTime(0.5);
  const std::pair<const char*, WeightLayout> layouts[] = {{"f32", WeightLayout::kF32},
                                                          {"bf16", WeightLayout::kBf16},
                                                          {"fp8_ue8m0", WeightLayout::kFp8Ue8m0},
                                                          {"fp8_f32", WeightLayout::kFp8F32},
                                                          {"mxfp4", WeightLayout::kMxfp4}};
  for (auto [name, layout] : layouts)
    benchmark::RegisterBenchmark(fmt::format("gemv/{}/14336x4096", name).c_str(), [layout = layout](benchmark::State& s) {
      run(s, layout, 1);
    })->UseRealTime()->MinTime(1.0);
  for (auto [name, layout] : layouts)
    for (bool bf16 : {false, true})
      benchmark::RegisterBenchmark(fmt::format("gemv_l2/{}{}/512x1024", name, bf16 ? "_bf16act" : "").c_str(),
                                   [layout = layout, bf16](benchmark::State& s) { run_resident(s, layout, bf16); })
          ->UseRealTime()
          ->MinTime(0.5);
  // Activations rounded to BF16: the AVX512-BF16 dot-product kernels where the CPU has them.
  for (auto [name, layout] : {layouts[1], layouts[2], layouts[4]})
    benchmark::RegisterBenchmark(fmt::format("gemv/{}_bf16act/14336x4096", name).c_str(), [layout = layout](benchmark::State& s) {
      run(s, layout, 1, true);
    })->UseRealTime()->MinTime(1.0);
  for (auto [name, layout] : layouts)
    for (int64_t m : {8, 16, 32, 64, 128, 256, 512})
      benchmark::RegisterBenchmark(fmt::format("gemm/{}/14336x4096/batch{}", name, m).c_str(),
                                   [layout = layout, m](benchmark::State& s) { run(s, layout, m); })
          ->UseRealTime()
          ->MinTime(1.0);
  // Prefill batches with BF16-rounded activations: the AVX512-BF16 dot-product GEMM where the CPU has it.
  for (auto [name, layout] : {layouts[1], layouts[2], layouts[3], layouts[4]})
    for (int64_t m : {32, 128, 512})
      benchmark::RegisterBenchmark(fmt::format("gemm/{}_bf16act/14336x4096/batch{}", name, m).c_str(),
                                   [layout = layout, m](benchmark::State& s) { run(s, layout, m, true); })
          ->UseRealTime()
          ->MinTime(1.0);
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
