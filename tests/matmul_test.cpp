// Every weight layout x every ISA path x awkward sizes, against a double-precision reference.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "engine/core/dtypes.h"
#include "engine/core/thread_pool.h"
#include "engine/kernels/cpu/matmul.h"

using namespace v4b;

namespace {

// A random weight matrix in one layout plus its exact values as doubles.
struct TestWeights {
  WeightMatrix w;
  std::vector<uint8_t> data, scales;
  std::vector<double> exact;  // [rows][cols]
};

TestWeights make_weights(WeightLayout layout, int64_t rows, int64_t cols, std::mt19937& rng) {
  TestWeights t;
  t.w.layout = layout;
  t.w.rows = rows;
  t.w.cols = cols;
  t.exact.resize(rows * cols);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::uniform_int_distribution<int> byte(0, 255), exp(118, 131);
  switch (layout) {
    case WeightLayout::kF32: {
      t.data.resize(rows * cols * 4);
      auto* p = reinterpret_cast<float*>(t.data.data());
      for (int64_t i = 0; i < rows * cols; ++i) t.exact[i] = p[i] = uni(rng);
      break;
    }
    case WeightLayout::kBf16: {
      t.data.resize(rows * cols * 2);
      auto* p = reinterpret_cast<uint16_t*>(t.data.data());
      for (int64_t i = 0; i < rows * cols; ++i) {
        p[i] = float_to_bf16(uni(rng)).bits;
        t.exact[i] = bf16_to_float(Bf16{p[i]});
      }
      break;
    }
    case WeightLayout::kFp8Ue8m0:
    case WeightLayout::kFp8F32: {
      const int64_t rb = (rows + 127) / 128, cb = (cols + 127) / 128;
      std::vector<double> s(rb * cb);
      const bool f32 = layout == WeightLayout::kFp8F32;
      t.scales.resize(rb * cb * (f32 ? 4 : 1));
      for (int64_t i = 0; i < rb * cb; ++i) {
        if (f32) {
          const float v = std::ldexp(1.0f + uni(rng) * 0.5f, exp(rng) - 127);
          reinterpret_cast<float*>(t.scales.data())[i] = v;
          s[i] = v;
        } else {
          t.scales[i] = static_cast<uint8_t>(exp(rng));
          s[i] = std::ldexp(1.0, t.scales[i] - 127);
        }
      }
      t.data.resize(rows * cols);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          uint8_t b;
          do b = static_cast<uint8_t>(byte(rng));
          while ((b & 0x7F) == 0x7F);  // no NaN codes in checkpoints
          t.data[r * cols + c] = b;
          t.exact[r * cols + c] = e4m3_to_float(b) * s[(r / 128) * cb + c / 128];
        }
      break;
    }
    case WeightLayout::kMxfp4: {
      t.data.resize(rows * cols / 2);
      t.scales.resize(rows * cols / 32);
      for (auto& b : t.data) b = static_cast<uint8_t>(byte(rng));
      for (auto& e : t.scales) e = static_cast<uint8_t>(exp(rng));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          t.exact[r * cols + c] =
              e2m1_to_float(e2m1_code_at(t.data.data() + r * cols / 2, c)) * std::ldexp(1.0, t.scales[r * cols / 32 + c / 32] - 127);
      break;
    }
  }
  t.w.data = t.data.data();
  t.w.scales = t.scales.empty() ? nullptr : t.scales.data();
  return t;
}

double normalised_error(const std::vector<float>& y, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    num += (y[i] - ref[i]) * (y[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

bool is_fp8(WeightLayout l) { return l == WeightLayout::kFp8Ue8m0 || l == WeightLayout::kFp8F32; }

// With bf16_activations, all but FP32 weights meet BF16-rounded activations (matmul.h).
double activation(WeightLayout l, float x, bool bf16) {
  return bf16 && l != WeightLayout::kF32 ? bf16_to_float(float_to_bf16(x)) : x;
}

// FP32 accumulation; the AVX512-BF16 FP8 kernel adds its flush of E4M3 subnormal codes (random codes
// here are 1/16 subnormal, far more than real checkpoints hold).
double bound(WeightLayout l, bool bf16) { return bf16 && is_fp8(l) ? 1e-4 : 2e-6; }

// n standard normal activations.
std::vector<float> gaussian(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = gauss(rng);
  return x;
}

// y[m][rows] = x · Wᵀ in doubles, on the activations the kernels see (activation()).
std::vector<double> reference(const TestWeights& t, const std::vector<float>& x, int64_t m, bool bf16) {
  const int64_t rows = t.w.rows, cols = t.w.cols;
  std::vector<double> ref(m * rows, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t k = 0; k < cols; ++k) ref[i * rows + n] += activation(t.w.layout, x[i * cols + k], bf16) * t.exact[n * cols + k];
  return ref;
}

const char* layout_name(WeightLayout l) {
  switch (l) {
    case WeightLayout::kF32: return "f32";
    case WeightLayout::kBf16: return "bf16";
    case WeightLayout::kFp8Ue8m0: return "fp8-ue8m0";
    case WeightLayout::kFp8F32: return "fp8-f32";
    case WeightLayout::kMxfp4: return "mxfp4";
  }
  return "?";
}

}  // namespace

TEST(Matmul, AllLayoutsAndIsasMatchDoubleReference) {
  std::mt19937 rng(1234);
  ThreadPool pool(2);
  const std::vector<int64_t> ms = {1, 2, 3, 4, 5, 7, 8, 13, 29};
  for (WeightLayout layout : {WeightLayout::kF32, WeightLayout::kBf16, WeightLayout::kFp8Ue8m0, WeightLayout::kFp8F32,
                              WeightLayout::kMxfp4}) {
    const bool fp4 = layout == WeightLayout::kMxfp4;
    for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{
             {1, fp4 ? 32 : 1}, {7, fp4 ? 64 : 17}, {33, fp4 ? 160 : 127}, {130, fp4 ? 416 : 129}, {257, fp4 ? 96 : 300},
             {65, fp4 ? 256 : 256}}) {
      TestWeights t = make_weights(layout, rows, cols, rng);
      for (int64_t m : ms) {
        const std::vector<float> x = gaussian(m * cols, rng);
        const std::vector<double> ref = reference(t, x, m, false);
        for (CpuIsa isa : {CpuIsa::kGeneric, CpuIsa::kAvx2, CpuIsa::kAvx512}) {
          std::vector<float> y(m * rows, -7.0f);
          matmul({&pool, nullptr, isa}, FlopCategory::kWeightGemm, x.data(), m, t.w, y.data());
          EXPECT_LT(normalised_error(y, ref), bound(layout, false)) << layout_name(layout) << " " << cpu_isa_name(resolve_cpu_isa(isa)) << " m=" << m
                                                    << " rows=" << rows << " cols=" << cols;
        }
      }
    }
  }
}

TEST(Matmul, Bf16ActivationsMatchReferenceOnRoundedInputs) {
  std::mt19937 rng(7);
  for (int64_t m : {1, 3, 9}) {
    TestWeights t = make_weights(WeightLayout::kFp8Ue8m0, 70, 260, rng);
    std::vector<Bf16> x(m * 260);
    std::normal_distribution<float> gauss(0.0f, 2.0f);
    for (auto& v : x) v = float_to_bf16(gauss(rng));
    std::vector<double> ref(m * 70, 0.0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t n = 0; n < 70; ++n)
        for (int64_t k = 0; k < 260; ++k) ref[i * 70 + n] += double(bf16_to_float(x[i * 260 + k])) * t.exact[n * 260 + k];
    std::vector<float> y(m * 70);
    matmul({}, FlopCategory::kWeightGemm, x.data(), m, t.w, y.data());
    EXPECT_LT(normalised_error(y, ref), 2e-6) << "m=" << m;
  }
}

TEST(Matmul, OneAndTwoThreadsGiveIdenticalBits) {
  std::mt19937 rng(99);
  ThreadPool one(1), two(2);
  for (WeightLayout layout : {WeightLayout::kBf16, WeightLayout::kFp8Ue8m0, WeightLayout::kMxfp4}) {
    TestWeights t = make_weights(layout, 515, 640, rng);
    for (int64_t m : {1, 4, 6, 40}) {
      std::vector<float> x(m * 640);
      std::normal_distribution<float> gauss(0.0f, 1.0f);
      for (auto& v : x) v = gauss(rng);
      std::vector<float> y1(m * 515), y2(m * 515);
      matmul({&one}, FlopCategory::kWeightGemm, x.data(), m, t.w, y1.data());
      matmul({&two}, FlopCategory::kWeightGemm, x.data(), m, t.w, y2.data());
      EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 4)) << layout_name(layout) << " m=" << m;
    }
  }
}

TEST(Matmul, LargeAndTinyActivationsStayAccurateWithFp8) {
  // The FP8 GEMV pre-scales activations; values near the float range ends must not overflow or flush.
  std::mt19937 rng(5);
  TestWeights t = make_weights(WeightLayout::kFp8Ue8m0, 16, 256, rng);
  for (float mag : {1e-30f, 1e-6f, 1.0f, 1e6f, 1e20f}) {
    std::vector<float> x(256);
    std::normal_distribution<float> gauss(0.0f, mag);
    for (auto& v : x) v = gauss(rng);
    std::vector<double> ref(16, 0.0);
    for (int64_t n = 0; n < 16; ++n)
      for (int64_t k = 0; k < 256; ++k) ref[n] += activation(WeightLayout::kFp8Ue8m0, x[k], false) * t.exact[n * 256 + k];
    std::vector<float> y(16);
    matmul({}, FlopCategory::kWeightGemm, x.data(), 1, t.w, y.data());
    EXPECT_LT(normalised_error(y, ref), bound(WeightLayout::kFp8Ue8m0, false)) << "magnitude " << mag;
  }
}

TEST(Matmul, CountsFlopsAndBytes) {
  std::mt19937 rng(3);
  TestWeights t = make_weights(WeightLayout::kMxfp4, 64, 128, rng);
  OpCounters counters;
  std::vector<float> x(3 * 128, 0.5f), y(3 * 64);
  matmul({nullptr, &counters}, FlopCategory::kRouter, x.data(), 3, t.w, y.data());
  const OpCount c = counters.get(FlopCategory::kRouter);
  EXPECT_EQ(c.flops, 2 * 3 * 64 * 128);
  EXPECT_EQ(c.bytes, 64 * 64 + 64 * 4 + 4 * 3 * (128 + 64));
  EXPECT_EQ(c.calls, 1);
  EXPECT_EQ(counters.get(FlopCategory::kWeightGemm).flops, 0);
}

TEST(Matmul, RejectsInconsistentMatrices) {
  std::vector<uint8_t> d(64);
  float y = 0, x[40] = {};
  EXPECT_THROW(matmul({}, FlopCategory::kWeightGemm, x, 1, WeightMatrix{WeightLayout::kMxfp4, 1, 40, d.data(), d.data()}, &y),
               std::invalid_argument);
  EXPECT_THROW(matmul({}, FlopCategory::kWeightGemm, x, 1, WeightMatrix{WeightLayout::kFp8Ue8m0, 1, 32, d.data(), nullptr}, &y),
               std::invalid_argument);
}

TEST(Matmul, Bf16ActivationModeMatchesRoundedReferenceOnEveryPath) {
  std::mt19937 rng(21);
  for (WeightLayout layout : {WeightLayout::kFp8Ue8m0, WeightLayout::kFp8F32, WeightLayout::kMxfp4, WeightLayout::kBf16}) {
    TestWeights t = make_weights(layout, 130, 512, rng);
    for (int64_t m : {1, 3, 4, 9, 20}) {
      const std::vector<float> x = gaussian(m * 512, rng);
      const std::vector<double> ref = reference(t, x, m, true);
      for (CpuIsa isa : {CpuIsa::kGeneric, CpuIsa::kAvx2, CpuIsa::kAvx512}) {
        std::vector<float> y(m * 130);
        KernelContext ctx{nullptr, nullptr, isa};
        ctx.bf16_activations = true;
        matmul(ctx, FlopCategory::kWeightGemm, x.data(), m, t.w, y.data());
        EXPECT_LT(normalised_error(y, ref), bound(layout, true)) << layout_name(layout) << " " << cpu_isa_name(resolve_cpu_isa(isa))
                                                                 << " m=" << m;
      }
    }
  }
}

// The BF16 dot-product GEMM (bf16_activations, 17+ rows) on shapes that end inside a 32-row panel,
// a 128-column FP8 block, a 256-column block of summed products or an 8-row activation tile, and
// with several tiles and threads.
TEST(Matmul, Bf16ActivationGemmHandlesPartialPanelsBlocksAndTiles) {
  std::mt19937 rng(31);
  ThreadPool one(1), two(2);
  for (WeightLayout layout : {WeightLayout::kFp8Ue8m0, WeightLayout::kFp8F32, WeightLayout::kMxfp4, WeightLayout::kBf16}) {
    const bool fp4 = layout == WeightLayout::kMxfp4;
    for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{130, fp4 ? 416 : 300}, {33, fp4 ? 96 : 258}, {257, 640}, {40, fp4 ? 448 : 400}}) {
      TestWeights t = make_weights(layout, rows, cols, rng);
      for (int64_t m : {17, 40, 70}) {
        const std::vector<float> x = gaussian(m * cols, rng);
        const std::vector<double> ref = reference(t, x, m, true);
        std::vector<float> y1(m * rows, -7.0f), y2(m * rows, -7.0f);
        KernelContext ctx{&one, nullptr, CpuIsa::kAvx512};
        ctx.bf16_activations = true;
        matmul(ctx, FlopCategory::kWeightGemm, x.data(), m, t.w, y1.data());
        ctx.pool = &two;
        matmul(ctx, FlopCategory::kWeightGemm, x.data(), m, t.w, y2.data());
        EXPECT_LT(normalised_error(y1, ref), bound(layout, true)) << layout_name(layout) << " m=" << m << " " << rows << "x" << cols;
        EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * 4)) << layout_name(layout) << " m=" << m;
      }
    }
  }
}

// A group computes each product bit for bit as matmul() alone does, and counts each under its
// category; three GEMM-sized products share one input (packed once for the group), a fourth of
// the same size has its own.
TEST(Matmul, GroupMatchesSeparateProductsAndCounts) {
  std::mt19937 rng(41);
  ThreadPool pool(2);
  const std::vector<std::pair<WeightLayout, int64_t>> specs = {
      {WeightLayout::kMxfp4, 1},   {WeightLayout::kFp8Ue8m0, 1}, {WeightLayout::kBf16, 3},      {WeightLayout::kF32, 2},
      {WeightLayout::kFp8F32, 20}, {WeightLayout::kMxfp4, 5},    {WeightLayout::kFp8Ue8m0, 24}, {WeightLayout::kMxfp4, 24},
      {WeightLayout::kBf16, 24},   {WeightLayout::kFp8Ue8m0, 24}};
  for (bool bf16 : {false, true}) {
    std::vector<TestWeights> ws;
    std::vector<std::vector<float>> xs, alone, grouped;
    std::vector<MatmulJob> jobs;
    for (size_t j = 0; j < specs.size(); ++j) ws.push_back(make_weights(specs[j].first, 96 + 40 * j, 256, rng));
    for (size_t j = 0; j < specs.size(); ++j) {
      const int64_t m = specs[j].second, n = ws[j].w.rows;
      xs.push_back(j == 7 || j == 8 ? xs[6] : gaussian(m * 256, rng));
      alone.emplace_back(m * n);
      grouped.emplace_back(m * n, -7.0f);
    }
    OpCounters one_by_one, together;
    KernelContext ctx{&pool, &one_by_one};
    ctx.bf16_activations = bf16;
    for (size_t j = 0; j < specs.size(); ++j) {
      const auto cat = j % 2 ? FlopCategory::kCompressor : FlopCategory::kWeightGemm;
      matmul(ctx, cat, xs[j].data(), specs[j].second, ws[j].w, alone[j].data());
      jobs.push_back({cat, xs[j == 7 || j == 8 ? 6 : j].data(), specs[j].second, &ws[j].w, grouped[j].data()});
    }
    ctx.counters = &together;
    matmul_group(ctx, jobs);
    for (size_t j = 0; j < specs.size(); ++j)
      EXPECT_EQ(0, std::memcmp(alone[j].data(), grouped[j].data(), alone[j].size() * 4)) << "job " << j << " bf16=" << bf16;
    for (auto cat : {FlopCategory::kCompressor, FlopCategory::kWeightGemm}) {
      EXPECT_EQ(together.get(cat).flops, one_by_one.get(cat).flops);
      EXPECT_EQ(together.get(cat).bytes, one_by_one.get(cat).bytes);
      EXPECT_GT(together.get(cat).flops, 0);
    }
  }
}
