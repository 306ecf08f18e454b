// Element-wise kernels against plainly written double-precision references (spec §2.1–2.8).
#include <cmath>
#include <complex>
#include <limits>
#include <numbers>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

#include "engine/kernels/cpu/ops.h"

using namespace v4b;

namespace {
std::vector<float> randn(int64_t n, uint32_t seed, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}
}  // namespace

TEST(Ops, RmsNormWeightedAndUnweighted) {
  const int64_t n = 517, rows = 3;
  auto x = randn(n * rows, 1), w = randn(n, 2);
  std::vector<Bf16> wb(n);
  for (int64_t i = 0; i < n; ++i) wb[i] = float_to_bf16(w[i]);
  std::vector<float> y(n * rows), yu(n * rows), yb(n * rows);
  OpCounters counters;
  rms_norm({nullptr, &counters}, x.data(), w.data(), 1e-6f, n, rows, y.data());
  rms_norm({}, x.data(), static_cast<const float*>(nullptr), 1e-6f, n, rows, yu.data());
  rms_norm({}, x.data(), wb.data(), 1e-6f, n, rows, yb.data());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
    const double inv = 1 / std::sqrt(ss / n + 1e-6);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(y[r * n + i], x[r * n + i] * inv * w[i], 1e-5 * (1 + std::fabs(x[r * n + i] * inv * w[i])));
      EXPECT_NEAR(yu[r * n + i], x[r * n + i] * inv, 1e-5);
      EXPECT_NEAR(yb[r * n + i], x[r * n + i] * inv * bf16_to_float(wb[i]), 1e-5 * (1 + std::fabs(yb[r * n + i])));
    }
  }
  EXPECT_GT(counters.get(FlopCategory::kElementwise).flops, 0);
}

TEST(Ops, YarnTableMatchesSpecBand) {
  // Spec §2.1.3: base 160000, 64 rope dims, original 65536, beta 32/1, factor 16 -> low 15, high 25.
  YarnParams y{16, 65536, 32, 1};
  RopeTable t = make_rope_table(64, 160000, &y), plain = make_rope_table(64, 160000);
  EXPECT_EQ(t.yarn_low, 15);
  EXPECT_EQ(t.yarn_high, 25);
  for (int i = 0; i <= 15; ++i) EXPECT_DOUBLE_EQ(t.theta[i], plain.theta[i]) << i;
  for (int i = 25; i < 32; ++i) EXPECT_NEAR(t.theta[i], plain.theta[i] / 16, 1e-18) << i;
  for (int i = 16; i < 25; ++i) {
    const double ramp = (i - 15) / 10.0;
    EXPECT_NEAR(t.theta[i], plain.theta[i] * (1 - ramp) + plain.theta[i] / 16 * ramp, 1e-15) << i;
  }
  EXPECT_DOUBLE_EQ(plain.theta[1], std::pow(160000.0, -2.0 / 64));
}

TEST(Ops, RopeRotatesTailPairsAndInverseRestores) {
  const int64_t D = 512, off = 448, heads = 3, pos = 1000003;
  RopeTable t = make_rope_table(64, 10000);
  auto x = randn(D * heads, 3), orig = x;
  rope_interleaved({}, x.data(), heads, D, off, t, pos);
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < off; ++i) EXPECT_EQ(x[h * D + i], orig[h * D + i]);  // nope dims untouched
    for (int64_t i = 0; i < 32; ++i) {
      const std::complex<double> z(orig[h * D + off + 2 * i], orig[h * D + off + 2 * i + 1]);
      const std::complex<double> r = z * std::polar(1.0, double(pos) * t.theta[i]);
      EXPECT_NEAR(x[h * D + off + 2 * i], r.real(), 1e-5);
      EXPECT_NEAR(x[h * D + off + 2 * i + 1], r.imag(), 1e-5);
    }
  }
  rope_interleaved({}, x.data(), heads, D, off, t, pos, /*inverse=*/true);
  for (int64_t i = 0; i < D * heads; ++i) EXPECT_NEAR(x[i], orig[i], 1e-5);

  // Half-split convention pairs i with i + R/2.
  auto h = randn(128, 4), ho = h;
  rope_half({}, h.data(), 1, 128, 64, t, 7);
  const std::complex<double> r = std::complex<double>(ho[64], ho[96]) * std::polar(1.0, 7 * t.theta[0]);
  EXPECT_NEAR(h[64], r.real(), 1e-6);
  EXPECT_NEAR(h[96], r.imag(), 1e-6);
}

TEST(Ops, SoftmaxWithSink) {
  auto z = randn(133, 5, 3.0f), p = z;
  const float sink = 0.7f;
  softmax_with_sink({}, p.data(), 133, sink);
  double den = std::exp(double(sink));
  for (float v : z) den += std::exp(double(v));
  double total = 0;
  for (size_t i = 0; i < z.size(); ++i) {
    EXPECT_NEAR(p[i], std::exp(double(z[i])) / den, 1e-7);
    total += p[i];
  }
  EXPECT_NEAR(total, 1 - std::exp(double(sink)) / den, 1e-6);  // the sink takes its share
  // A huge sink takes everything without overflow; no sink is a plain softmax.
  auto q = z;
  softmax_with_sink({}, q.data(), 133, 1e4f);
  for (float v : q) EXPECT_EQ(v, 0.0f);
  q = z;
  softmax_with_sink({}, q.data(), 133, -std::numeric_limits<float>::infinity());
  double s = 0;
  for (float v : q) s += v;
  EXPECT_NEAR(s, 1.0, 1e-6);
}

TEST(Ops, SwigluClamps) {
  const float g[] = {-20, -1, 0, 3, 12, 50}, u[] = {-30, 2, 5, -11, 11, 1};
  float h[6], hn[6];
  swiglu({}, g, u, 6, 10.0f, h);
  swiglu({}, g, u, 6, 0.0f, hn);
  for (int i = 0; i < 6; ++i) {
    const double gc = std::min<double>(g[i], 10), uc = std::clamp<double>(u[i], -10, 10);
    EXPECT_NEAR(h[i], gc / (1 + std::exp(-gc)) * uc, 1e-5 * (1 + std::fabs(h[i])));
    EXPECT_NEAR(hn[i], g[i] / (1 + std::exp(-double(g[i]))) * u[i], 1e-4 * (1 + std::fabs(hn[i])));
  }
}

TEST(Ops, V4RoutingUsesBiasForChoiceOnly) {
  const int64_t E = 16;
  auto logits = randn(E, 6);
  std::vector<float> bias(E, 0.0f);
  bias[3] = 100.0f;  // forces expert 3 in, without changing its weight
  RouteParams p;
  p.top_k = 4;
  p.scale = 1.5;
  Route r = route_experts({}, logits.data(), E, bias.data(), p);
  ASSERT_EQ(r.experts.size(), 4u);
  EXPECT_TRUE(std::is_sorted(r.experts.begin(), r.experts.end()));
  EXPECT_NE(std::find(r.experts.begin(), r.experts.end(), 3), r.experts.end());
  double sum_a = 0, sum_w = 0;
  for (int32_t e : r.experts) sum_a += std::sqrt(std::log1p(std::exp(double(logits[e]))));
  for (size_t i = 0; i < r.experts.size(); ++i) {
    const double a = std::sqrt(std::log1p(std::exp(double(logits[r.experts[i]]))));
    EXPECT_NEAR(r.weights[i], a / sum_a * 1.5, 1e-6);
    sum_w += r.weights[i];
  }
  EXPECT_NEAR(sum_w, 1.5, 1e-5);
  // The other three are the best by affinity among the rest.
  std::vector<std::pair<float, int>> rest;
  for (int e = 0; e < E; ++e)
    if (e != 3) rest.push_back({logits[e], e});
  std::sort(rest.rbegin(), rest.rend());
  for (int i = 0; i < 3; ++i) EXPECT_NE(std::find(r.experts.begin(), r.experts.end(), rest[i].second), r.experts.end());

  const int64_t fixed[] = {9, 2, 5};
  Route h = route_fixed({}, logits.data(), E, fixed, p);
  EXPECT_EQ(h.experts, (std::vector<int32_t>{2, 5, 9}));
}

TEST(Ops, V3GroupLimitedRouting) {
  // 8 groups of 4; only groups 1 and 6 may contribute when topk_group = 2.
  std::vector<float> logits(32, -5.0f);
  logits[4] = 3;
  logits[5] = 2.9f;
  logits[24] = 2.5f;
  logits[25] = 2.4f;
  logits[31] = 4;  // best single score, but its group's top-2 sum is low
  RouteParams p{RouterScoring::kSigmoid, 4, 8, 2, true, 2.5};
  Route r = route_experts({}, logits.data(), 32, nullptr, p);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{4, 5, 24, 25}));
}

TEST(Ops, SinkhornFollowsReferenceOrder) {
  auto c = randn(16, 8, 2.0f);
  std::vector<double> ref(c.begin(), c.end());
  sinkhorn({}, c.data(), 4, 20, 1e-6f);
  // Double reference, written straight from spec §2.3.2.
  for (int i = 0; i < 4; ++i) {
    double m = -1e300, s = 0;
    for (int j = 0; j < 4; ++j) m = std::max(m, ref[i * 4 + j]);
    for (int j = 0; j < 4; ++j) s += std::exp(ref[i * 4 + j] - m);
    for (int j = 0; j < 4; ++j) ref[i * 4 + j] = std::exp(ref[i * 4 + j] - m) / s + 1e-6;
  }
  auto col = [&] {
    for (int j = 0; j < 4; ++j) {
      double s = 0;
      for (int i = 0; i < 4; ++i) s += ref[i * 4 + j];
      for (int i = 0; i < 4; ++i) ref[i * 4 + j] /= s + 1e-6;
    }
  };
  col();
  for (int it = 1; it < 20; ++it) {
    for (int i = 0; i < 4; ++i) {
      double s = 0;
      for (int j = 0; j < 4; ++j) s += ref[i * 4 + j];
      for (int j = 0; j < 4; ++j) ref[i * 4 + j] /= s + 1e-6;
    }
    col();
  }
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(c[i], ref[i], 1e-6);
  for (int j = 0; j < 4; ++j) {
    double s = 0;
    for (int i = 0; i < 4; ++i) s += c[i * 4 + j];
    EXPECT_NEAR(s, 1.0, 1e-4);
  }
}

TEST(Ops, TopKOrderAndTies) {
  const float v[] = {1, 5, 3, 5, -2, 5, 0};
  EXPECT_EQ(top_k({}, v, 7, 3), (std::vector<int32_t>{1, 3, 5}));
  EXPECT_EQ(top_k({}, v, 7, 4), (std::vector<int32_t>{1, 3, 5, 2}));
  EXPECT_EQ(top_k({}, v, 7, 100).size(), 7u);
  EXPECT_TRUE(top_k({}, v, 7, 0).empty());
  auto big = randn(100003, 9);
  auto idx = top_k({}, big.data(), 100003, 1024);
  ASSERT_EQ(idx.size(), 1024u);
  std::vector<float> sorted(big);
  std::sort(sorted.rbegin(), sorted.rend());
  for (int i = 0; i < 1024; ++i) EXPECT_EQ(big[idx[i]], sorted[i]);
  // Many ties at the cut (-0 and +0 tie too): the lowest indices of the tied value win, in index order.
  std::vector<float> coarse(5000);
  for (size_t i = 0; i < coarse.size(); ++i) coarse[i] = std::round(big[i] * 2.0f) * (i % 2 ? 1.0f : -1.0f);
  for (int64_t k : {1, 37, 512, 4999}) {
    std::vector<int32_t> ref(coarse.size());
    std::iota(ref.begin(), ref.end(), 0);
    std::stable_sort(ref.begin(), ref.end(), [&](int32_t a, int32_t b) { return coarse[a] > coarse[b]; });
    ref.resize(k);
    EXPECT_EQ(top_k({}, coarse.data(), static_cast<int64_t>(coarse.size()), k), ref) << "k=" << k;
    std::sort(ref.begin(), ref.end());
    EXPECT_EQ(top_k({}, coarse.data(), static_cast<int64_t>(coarse.size()), k, TopKOrder::kByIndex), ref) << "k=" << k;
  }
  // Values one ulp step apart: the cut is found to the last bit; each value comes four times, so
  // ties fall at the cut.
  std::vector<float> narrow(20000);
  for (size_t i = 0; i < narrow.size(); ++i) narrow[i] = 1.0f + std::ldexp(static_cast<float>(i * 7919 % 5000), -23);
  std::vector<int32_t> ref(narrow.size());
  std::iota(ref.begin(), ref.end(), 0);
  std::stable_sort(ref.begin(), ref.end(), [&](int32_t a, int32_t b) { return narrow[a] > narrow[b]; });
  ref.resize(301);
  EXPECT_EQ(top_k({}, narrow.data(), static_cast<int64_t>(narrow.size()), 301), ref);
  std::sort(ref.begin(), ref.end());
  EXPECT_EQ(top_k({}, narrow.data(), static_cast<int64_t>(narrow.size()), 301, TopKOrder::kByIndex), ref);
  // A sample that misleads: the sampled places (every 16th of 4096) hold the largest values, so the
  // sample's threshold keeps fewer than k and every value has to be looked at again.
  std::vector<float> spiky(4096);
  for (size_t i = 0; i < spiky.size(); ++i) spiky[i] = i % 16 == 0 ? 100.0f + static_cast<float>(i) : static_cast<float>(i % 7);
  std::vector<int32_t> spiky_ref(spiky.size());
  std::iota(spiky_ref.begin(), spiky_ref.end(), 0);
  std::stable_sort(spiky_ref.begin(), spiky_ref.end(), [&](int32_t a, int32_t b) { return spiky[a] > spiky[b]; });
  spiky_ref.resize(300);  // the 256 spikes and the first 44 sixes
  EXPECT_EQ(top_k({}, spiky.data(), 4096, 300), spiky_ref);
  // NaNs rank below every number, lowest index first among themselves; -inf is a number.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const float odd[] = {nan, 2, -inf, nan, 7, nan};
  EXPECT_EQ(top_k({}, odd, 6, 4), (std::vector<int32_t>{4, 1, 2, 0}));
  EXPECT_EQ(top_k({}, odd, 6, 5, TopKOrder::kByIndex), (std::vector<int32_t>{0, 1, 2, 3, 4}));
}
