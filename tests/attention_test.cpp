// The FP32 attention products and the online-softmax attention (engine/kernels/cpu/attention.h) on
// every ISA path and awkward sizes, against plain double-precision references.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "engine/core/dtypes.h"
#include "engine/core/thread_pool.h"
#include "engine/kernels/cpu/attention.h"
#include "engine/kernels/cpu/matmul.h"

using namespace v4b;

namespace {

std::vector<float> random_vec(int64_t n, std::mt19937& rng, float scale = 1.0f) {
  std::uniform_real_distribution<float> uni(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = uni(rng);
  return v;
}

double normalised_error(const std::vector<float>& y, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    num += (y[i] - ref[i]) * (y[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

constexpr CpuIsa kIsas[] = {CpuIsa::kGeneric, CpuIsa::kAvx2, CpuIsa::kAvx512};

}  // namespace

TEST(Attention, ProductsMatchDoubleReference) {
  std::mt19937 rng(7);
  for (int64_t m : {1, 3, 8, 9, 21}) {
    for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 5}, {37, 64}, {64, 130}, {100, 512}}) {
      const std::vector<float> a = random_vec(m * k, rng), bt = random_vec(n * k, rng), b = random_vec(k * n, rng);
      const std::vector<float> c0 = random_vec(m * n, rng);
      std::vector<double> ref_nt(m * n), ref_nn(m * n);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double s = 0, t = c0[i * n + j];
          for (int64_t l = 0; l < k; ++l) {
            s += double(a[i * k + l]) * bt[j * k + l];
            t += double(a[i * k + l]) * b[l * n + j];
          }
          ref_nt[i * n + j] = s;
          ref_nn[i * n + j] = t;
        }
      for (CpuIsa isa : kIsas) {
        std::vector<float> c(m * n);
        gemm_f32_nt(isa, a.data(), k, bt.data(), n, k, c.data(), n, m);
        EXPECT_LT(normalised_error(c, ref_nt), 1e-6) << "nt " << cpu_isa_name(resolve_cpu_isa(isa)) << " m=" << m << " n=" << n;
        c = c0;
        gemm_f32_nn(isa, a.data(), k, b.data(), n, c.data(), n, m, n, k, /*accumulate=*/true);
        EXPECT_LT(normalised_error(c, ref_nn), 1e-6) << "nn " << cpu_isa_name(resolve_cpu_isa(isa)) << " m=" << m << " n=" << n;
      }
    }
  }
}

// Blocks folded in any order with per-row visibility and a sink equal one softmax over all rows.
TEST(Attention, OnlineSoftmaxMatchesDoubleReference) {
  std::mt19937 rng(11);
  const int64_t m = 6, dk = 48, dv = 40, n = 300, ldv = 64;
  const float scale = 0.3f;
  const std::vector<float> q = random_vec(m * dk, rng), k = random_vec(n * dk, rng, 2.0f), v = random_vec(n * ldv, rng);
  const std::vector<float> sink = random_vec(m, rng, 2.0f);
  std::vector<int64_t> hi(m);
  for (int64_t i = 0; i < m; ++i) hi[i] = 50 * i;  // row 0 sees nothing but the sink
  for (bool with_sink : {false, true}) {
    std::vector<double> ref(m * dv, 0.0);
    for (int64_t i = 0; i < m; ++i) {
      std::vector<double> s(hi[i]);
      double mx = with_sink ? sink[i] : -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < hi[i]; ++j) {
        for (int64_t l = 0; l < dk; ++l) s[j] += double(q[i * dk + l]) * k[j * dk + l];
        s[j] *= scale;
        mx = std::max(mx, s[j]);
      }
      double den = with_sink ? std::exp(sink[i] - mx) : 0.0;
      for (int64_t j = 0; j < hi[i]; ++j) den += std::exp(s[j] - mx);
      for (int64_t j = 0; j < hi[i]; ++j)
        for (int64_t c = 0; c < dv; ++c) ref[i * dv + c] += std::exp(s[j] - mx) / den * v[j * ldv + c];
    }
    for (CpuIsa isa : kIsas) {
      OnlineAttention att;
      att.reset(m, dv);
      // Two blocks, the later one first: [128, n) then [0, 128).
      std::vector<int64_t> lo2(m, 0), hi2(m);
      for (int64_t i = 0; i < m; ++i) hi2[i] = hi[i] - 128;
      att.add(isa, q.data(), dk, dk, k.data() + 128 * dk, v.data() + 128 * ldv, ldv, n - 128, scale, lo2.data(), hi2.data());
      att.add(isa, q.data(), dk, dk, k.data(), v.data(), ldv, 128, scale, nullptr, hi.data());
      std::vector<float> out(m * dv);
      att.finish(with_sink ? sink.data() : nullptr, out.data(), dv);
      EXPECT_LT(normalised_error(out, ref), 1e-5) << cpu_isa_name(resolve_cpu_isa(isa)) << " sink=" << with_sink;
      for (int64_t c = 0; c < dv && !with_sink; ++c) EXPECT_EQ(out[c], 0.0f);  // row 0 saw nothing

      // Split-K: blocks [0, 100), [100, 200), [200, n) in states of their own, merged out of order
      // into an empty one, so each side of a merge holds the larger maximum somewhere.
      const int64_t cuts[] = {0, 100, 200, n};
      OnlineAttention merged;
      merged.reset(m, dv);
      for (int b : {2, 0, 1}) {
        const int64_t r0 = cuts[b], rows = cuts[b + 1] - r0;
        std::vector<int64_t> lo_b(m, 0), hi_b(m);
        for (int64_t i = 0; i < m; ++i) hi_b[i] = hi[i] - r0;
        OnlineAttention part;
        part.reset(m, dv);
        part.add(isa, q.data(), dk, dk, k.data() + r0 * dk, v.data() + r0 * ldv, ldv, rows, scale, lo_b.data(), hi_b.data());
        merged.merge(part);
      }
      std::vector<float> out2(m * dv);
      merged.finish(with_sink ? sink.data() : nullptr, out2.data(), dv);
      EXPECT_LT(normalised_error(out2, ref), 1e-5) << "merged " << cpu_isa_name(resolve_cpu_isa(isa)) << " sink=" << with_sink;
      for (int64_t c = 0; c < dv && !with_sink; ++c) EXPECT_EQ(out2[c], 0.0f);
    }
  }
}

// BF16 attention (bf16_activations) over listed rows of a Bf16KvRows: a contiguous run that starts
// on an odd row (its first pair half used), scattered picks whose pair partners are absent, and a
// run cut by per-query windows, against a double reference on the same BF16 operands. Its one
// rounding is the probabilities' (2^-9 relative), and every ISA path does the same arithmetic.
TEST(Attention, Bf16RowsMatchDoubleReference) {
  std::mt19937 rng(17);
  for (int64_t m : {1, 3, 8, 9}) {
    for (int64_t d : {64, 512}) {
      const int64_t rows = 301;
      std::vector<float> kv = random_vec(rows * d, rng, 2.0f), q = random_vec(m * d, rng, 0.5f);
      for (float& x : kv) x = bf16_to_float(float_to_bf16(x));
      std::vector<uint16_t> q16(m * d);
      for (int64_t i = 0; i < m * d; ++i) q16[i] = float_to_bf16(q[i]).bits;
      Bf16KvRows store;
      store.resize(rows, d);
      for (int64_t j = 0; j < rows; ++j) store.set_row(j, kv.data() + j * d);
      std::vector<int32_t> run(131), picks;
      for (int32_t j = 0; j < 131; ++j) run[j] = 37 + j;
      for (int32_t j = 0; j < rows; j += 2 + static_cast<int32_t>(rng() % 3)) picks.push_back(j);
      // No two picks share a stored pair, so they go as pairs of picks: an odd count (d = 64) leaves
      // the last one alone.
      if ((picks.size() % 2 == 0) == (d == 64)) picks.pop_back();
      std::vector<int64_t> lo(m), hi(m);
      for (int64_t i = 0; i < m; ++i) {
        lo[i] = static_cast<int64_t>(rng() % 40);
        hi[i] = lo[i] + 1 + static_cast<int64_t>(rng() % 90);
      }
      const float scale = 1.0f / std::sqrt(static_cast<float>(d)), sink = 0.25f;
      std::vector<float> sinks(m, sink);
      // Reference: each query's visible rows, softmax with the sink, in double.
      std::vector<double> ref(m * d, 0.0);
      for (int64_t i = 0; i < m; ++i) {
        std::vector<int32_t> seen;
        for (int64_t j = 0; j < 131; ++j) seen.push_back(run[j]);
        seen.insert(seen.end(), picks.begin(), picks.end());
        for (int64_t j = lo[i]; j < hi[i]; ++j) seen.push_back(run[j]);
        std::vector<double> s(seen.size());
        double mx = sink;
        for (size_t j = 0; j < seen.size(); ++j) {
          for (int64_t c = 0; c < d; ++c) s[j] += double(bf16_to_float(Bf16{q16[i * d + c]})) * kv[seen[j] * d + c];
          s[j] *= scale;
          mx = std::max(mx, s[j]);
        }
        double den = std::exp(sink - mx);
        for (double x : s) den += std::exp(x - mx);
        for (size_t j = 0; j < seen.size(); ++j)
          for (int64_t c = 0; c < d; ++c) ref[i * d + c] += std::exp(s[j] - mx) / den * kv[seen[j] * d + c];
      }
      std::vector<std::vector<float>> outs;
      for (CpuIsa isa : kIsas) {
        OnlineAttention att;
        att.reset(m, d);
        att.add_bf16(isa, q16.data(), d, store, picks.data(), static_cast<int64_t>(picks.size()), scale);
        att.add_bf16(isa, q16.data(), d, store, run.data(), 131, scale, lo.data(), hi.data());
        att.add_bf16(isa, q16.data(), d, store, run.data(), 131, scale);
        std::vector<float> out(m * d);
        att.finish(sinks.data(), out.data(), d);
        EXPECT_LT(normalised_error(out, ref), 3e-3) << cpu_isa_name(resolve_cpu_isa(isa)) << " m=" << m << " d=" << d;
        outs.push_back(out);
      }
      std::vector<double> first(outs[0].begin(), outs[0].end());
      for (size_t k = 1; k < outs.size(); ++k) EXPECT_LT(normalised_error(outs[k], first), 1e-5) << "paths disagree, m=" << m;
    }
  }
}

// A ring of rows read in time order (the V4 window's BF16 copy in a decode step): the list wraps
// from the ring's end to its start, and the rows never set are zero (resize(..., zeroed)), so the
// pair halves beside the list's ends weigh nothing. Against a double reference.
TEST(Attention, Bf16RingOrderMatchesDoubleReference) {
  std::mt19937 rng(23);
  const int64_t ring = 128, d = 512, m = 8;
  for (int32_t start : {0, 1, 77, 127}) {
    for (int32_t n : {1, 2, 51, 128}) {
      std::vector<int32_t> order(n);
      for (int32_t j = 0; j < n; ++j) order[j] = (start + j) % static_cast<int32_t>(ring);
      std::vector<float> kv = random_vec(ring * d, rng, 2.0f), q = random_vec(m * d, rng, 0.5f);
      for (float& x : kv) x = bf16_to_float(float_to_bf16(x));
      std::vector<uint16_t> q16(m * d);
      for (int64_t i = 0; i < m * d; ++i) q16[i] = float_to_bf16(q[i]).bits;
      Bf16KvRows store;
      store.resize(ring, d, /*zeroed=*/true);
      for (int32_t r : order) store.set_row(r, kv.data() + r * d);
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      std::vector<double> ref(m * d, 0.0);
      for (int64_t i = 0; i < m; ++i) {
        std::vector<double> s(n);
        double mx = -1e300, den = 0;
        for (int32_t j = 0; j < n; ++j) {
          for (int64_t c = 0; c < d; ++c) s[j] += double(bf16_to_float(Bf16{q16[i * d + c]})) * kv[order[j] * d + c];
          mx = std::max(mx, s[j] *= scale);
        }
        for (double x : s) den += std::exp(x - mx);
        for (int32_t j = 0; j < n; ++j)
          for (int64_t c = 0; c < d; ++c) ref[i * d + c] += std::exp(s[j] - mx) / den * kv[order[j] * d + c];
      }
      for (CpuIsa isa : kIsas) {
        OnlineAttention att;
        att.reset(m, d);
        att.add_bf16(isa, q16.data(), d, store, order.data(), n, scale);
        std::vector<float> out(m * d);
        att.finish(nullptr, out.data(), d);
        EXPECT_LT(normalised_error(out, ref), 3e-3) << cpu_isa_name(resolve_cpu_isa(isa)) << " start=" << start << " n=" << n;
      }
    }
  }
}

// Values exact in BF16 (FP4 codes times powers of two, as the V4 indexer's queries and keys).
std::vector<float> fp4ish(std::mt19937& rng, int64_t n) {
  const float codes[] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  std::vector<float> v(n);
  for (float& x : v) x = std::ldexp(codes[rng() % 8] * (rng() % 2 ? 1.0f : -1.0f), static_cast<int>(rng() % 9) - 6);
  return v;
}

TEST(Attention, Bf16ExactProductMatchesDoubleReference) {
  std::mt19937 rng(5);
  auto fp4ish = [&](int64_t n) { return ::fp4ish(rng, n); };
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{16, 40, 128}, {37, 100, 130}, {1024, 70, 128}, {4, 9, 8}}) {
    const std::vector<float> a = fp4ish(m * k), b = fp4ish(n * k);
    std::vector<double> ref(m * n);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t l = 0; l < k; ++l) ref[i * n + j] += double(a[i * k + l]) * b[j * k + l];
    for (CpuIsa isa : kIsas) {
      std::vector<float> y(m * n);
      matmul_bf16_exact({nullptr, nullptr, isa}, FlopCategory::kIndexerScore, a.data(), m, b.data(), n, k, y.data());
      EXPECT_LT(normalised_error(y, ref), 1e-6) << cpu_isa_name(resolve_cpu_isa(isa)) << " m=" << m << " n=" << n << " k=" << k;
    }
  }
}

// Rows of FP4 codes whose 32-value blocks each take a power of two within a factor 8 of the row's
// others, as V4's indexer rows after the Hadamard rotation: exact in BF16, and 8-bit integers times
// one power of two per row.
std::vector<float> fp4_rows(std::mt19937& rng, int64_t rows, int64_t k) {
  const float codes[] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  std::vector<float> v(rows * k);
  for (int64_t r = 0; r < rows; ++r) {
    const int base = static_cast<int>(rng() % 9) - 6;
    for (int64_t b = 0; b < k; b += 32) {
      const int e = base + static_cast<int>(rng() % 4);
      for (int64_t c = b; c < std::min(k, b + 32); ++c)
        v[r * k + c] = std::ldexp(codes[rng() % 8] * (rng() % 2 ? 1.0f : -1.0f), e);
    }
  }
  return v;
}

// The fused indexer scoring (ReLU'd head dots weighted and summed in registers), in BF16 and in
// 8-bit integers, against the formula in double precision, for key counts that end inside a 32-key
// panel and both head counts V4 uses.
TEST(Attention, IndexScoresMatchDoubleReference) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> weight(-1.0f, 1.0f);
  for (auto [nq, heads, n, k] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{1, 16, 5, 128}, {3, 8, 70, 128}, {64, 16, 1000, 128},
                                 {2, 16, 33, 256}}) {
    const std::vector<float> q = fp4_rows(rng, nq * heads, k), keys = fp4_rows(rng, n, k);
    std::vector<float> w(nq * heads);
    for (float& x : w) x = weight(rng);
    std::vector<double> ref(nq * n);
    for (int64_t i = 0; i < nq; ++i)
      for (int64_t r = 0; r < n; ++r)
        for (int64_t h = 0; h < heads; ++h) {
          double dot = 0;
          for (int64_t l = 0; l < k; ++l) dot += double(q[(i * heads + h) * k + l]) * keys[r * k + l];
          ref[i * n + r] += w[i * heads + h] * std::max(dot, 0.0);
        }
    const int64_t ld = n + 3;  // a row stride wider than the keys: nothing past n is written
    // Int8: keys appended one by one, scored over all but the last key.
    IndexKeysInt8 keys8;
    keys8.reset(k);
    for (int64_t r = 0; r < n; ++r) keys8.push_back(keys.data() + r * k);
    ASSERT_TRUE(keys8.usable());
    ASSERT_EQ(keys8.size(), n);
    const int64_t n8 = std::max<int64_t>(1, n - 1);
    for (CpuIsa isa : kIsas) {
      std::vector<float> s8(nq * ld, -7.0f);
      const bool ran8 = index_scores_int8({nullptr, nullptr, isa}, q.data(), nq, heads, w.data(), keys8, n8, s8.data(), ld);
      EXPECT_EQ(ran8, index_int8_supported({nullptr, nullptr, isa}, heads, k));
      if (!ran8) {
        EXPECT_EQ(s8, std::vector<float>(nq * ld, -7.0f));
        continue;
      }
      std::vector<float> got(nq * n8);
      std::vector<double> want(nq * n8);
      for (int64_t i = 0; i < nq; ++i) {
        std::copy_n(s8.data() + i * ld, n8, got.data() + i * n8);
        std::copy_n(ref.data() + i * n, n8, want.data() + i * n8);
        for (int64_t r = n8; r < ld; ++r) EXPECT_EQ(s8[i * ld + r], -7.0f);
      }
      EXPECT_LT(normalised_error(got, want), 1e-6) << "int8 nq=" << nq << " heads=" << heads << " n=" << n8 << " k=" << k;
    }
    std::vector<float> scores(nq * ld, -7.0f);
    const bool ran = index_scores_bf16({nullptr, nullptr, CpuIsa::kAvx512}, q.data(), nq, heads, w.data(), keys.data(), n, k,
                                       scores.data(), ld);
    if (resolve_cpu_isa(CpuIsa::kAvx512) != CpuIsa::kAvx512 || !__builtin_cpu_supports("avx512bf16")) {
      EXPECT_FALSE(ran);
      continue;
    }
    ASSERT_TRUE(ran);
    std::vector<float> got(nq * n);
    for (int64_t i = 0; i < nq; ++i) {
      std::copy_n(scores.data() + i * ld, n, got.data() + i * n);
      for (int64_t r = n; r < ld; ++r) EXPECT_EQ(scores[i * ld + r], -7.0f);
    }
    EXPECT_LT(normalised_error(got, ref), 1e-6) << "nq=" << nq << " heads=" << heads << " n=" << n << " k=" << k;
  }
  // Shapes the kernel does not take leave the scores alone.
  std::vector<float> q(12 * 128, 1.0f), keys(4 * 128, 1.0f), w(12, 1.0f), scores(4, -7.0f);
  EXPECT_FALSE(index_scores_bf16({}, q.data(), 1, 12, w.data(), keys.data(), 4, 128, scores.data(), 4));
  EXPECT_FALSE(index_scores_bf16({nullptr, nullptr, CpuIsa::kGeneric}, q.data(), 1, 8, w.data(), keys.data(), 4, 128, scores.data(), 4));
  EXPECT_EQ(scores, std::vector<float>(4, -7.0f));
  // Rows that are not 8-bit integers times one power of two are refused: a block 16 times the
  // others' scale (its integers would reach 12 x 16), or a NaN.
  std::mt19937 rng2(4);
  std::vector<float> wide = fp4_rows(rng2, 16, 128);
  for (int64_t c = 32; c < 64; ++c) wide[c] = 6.0f * std::ldexp(1.0f, 4) * (c % 2 ? 1.0f : -1.0f);
  wide[0] = 0.5f;
  IndexKeysInt8 bad;
  bad.reset(128);
  for (int64_t r = 0; r < 16; ++r) bad.push_back(wide.data() + r * 128);
  EXPECT_FALSE(bad.usable());
  std::vector<float> w16(16, 1.0f), s16(4, -7.0f);
  EXPECT_FALSE(index_scores_int8({}, fp4_rows(rng2, 16, 128).data(), 1, 16, w16.data(), bad, 4, s16.data(), 4));
  IndexKeysInt8 good;
  good.reset(128);
  const std::vector<float> fine = fp4_rows(rng2, 4, 128);
  for (int64_t r = 0; r < 4; ++r) good.push_back(fine.data() + r * 128);
  ASSERT_TRUE(good.usable());
  EXPECT_FALSE(index_scores_int8({}, wide.data(), 1, 16, w16.data(), good, 4, s16.data(), 4));
  std::vector<float> nan_q = fp4_rows(rng2, 16, 128);
  nan_q[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(index_scores_int8({}, nan_q.data(), 1, 16, w16.data(), good, 4, s16.data(), 4));
  EXPECT_EQ(s16, std::vector<float>(4, -7.0f));
}
