// The official numerics of DeepSeek-V4 (spec §7.7): the reference's official-mode primitives
// against hand-computed values, the official mode against the reference's own FP64 mode, and the
// engine's official numerics against the reference's, on a 6-layer v4-tiny checkpoint (two window
// layers, then CSA / HCA alternating) whose residual branches are small (spec §7.6).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "engine/core/dtypes.h"
#include "engine/models/presets.h"
#include "engine/runtime/engine.h"
#include "engine/synth/synth.h"
#include "tests/engine_checks.h"
#include "tests/test_util.h"
#include "tests/v4_reference.h"

using namespace v4b;
using namespace v4b::test;
namespace ro = v4b::test::ref_official;

namespace {

constexpr int64_t kPositions = 300;  // crosses CSA blocks, two HCA rows (127, 255) and the 128-token window

// v4-tiny widened to 6 layers: window, window, CSA, HCA, CSA, HCA, plus the MTP block's 0.
const std::string& official_dir() {
  static TempDir dir;
  static const std::string path = [] {
    nlohmann::json cfg = preset_config_json("v4-tiny");
    cfg["num_hidden_layers"] = 6;
    cfg["compress_ratios"] = {0, 0, 4, 128, 4, 128, 0};
    // Small residual branches (spec §7.6): wo_b and w2 at 0.05 / sqrt(fan_in). With the synthetic
    // default 0.2, ulp-level differences alone cost about 3e-4 nats (engine decode vs prefill, or
    // FP32 vs exact sums in the reference), above the bound below; at 0.05 about 2e-5.
    cfg["synthetic_residual_scale"] = 0.05;
    const std::string p = (dir.path / "v4-tiny-6").string();
    write_synthetic_checkpoint(cfg, p, 11);
    return p;
  }();
  return path;
}

const std::vector<int32_t>& prompt() {
  static const std::vector<int32_t> t = tokens(kPositions, 21);
  return t;
}

// The reference's logits over the prompt, computed once per (dense, numerics).
const std::vector<std::vector<double>>& reference(bool dense, RefNumerics numerics) {
  static std::map<std::pair<bool, RefNumerics>, std::vector<std::vector<double>>> cache;
  auto it = cache.find({dense, numerics});
  if (it == cache.end()) {
    const auto start = std::chrono::steady_clock::now();
    auto logits = v4_reference_logits(official_dir(), std::vector<int>(prompt().begin(), prompt().end()), dense, numerics);
    std::printf("reference %s %s: %.1f s\n", dense ? "dense" : "native", numerics == RefNumerics::kOfficial ? "official" : "fp64",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    it = cache.emplace(std::make_pair(dense, numerics), std::move(logits)).first;
  }
  return it->second;
}

// log-softmax in double: x - (max + log Σ exp(x - max)).
template <typename T>
std::vector<double> log_softmax(const T* x, size_t n) {
  const double mx = *std::max_element(x, x + n);
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += std::exp(double(x[i]) - mx);
  const double lse = mx + std::log(s);
  std::vector<double> y(n);
  for (size_t i = 0; i < n; ++i) y[i] = double(x[i]) - lse;
  return y;
}

// KL(p || q) of two logit rows, and whether their top-1 tokens agree.
template <typename T>
std::pair<double, bool> kl_top1(const std::vector<double>& p_logits, const T* q_logits) {
  const size_t n = p_logits.size();
  const auto lp = log_softmax(p_logits.data(), n), lq = log_softmax(q_logits, n);
  double kl = 0;
  for (size_t i = 0; i < n; ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  const bool same =
      std::max_element(p_logits.begin(), p_logits.end()) - p_logits.begin() == std::max_element(q_logits, q_logits + n) - q_logits;
  return {kl, same};
}

struct Agreement {
  double mean_kl = 0, max_kl = 0, top1 = 0;
};
// Mean / max KL(reference || other) and top-1 agreement over all positions; row(t) gives other's row t.
template <typename Row>
Agreement agreement(const std::vector<std::vector<double>>& ref, Row row) {
  Agreement a;
  for (size_t t = 0; t < ref.size(); ++t) {
    const auto [kl, same] = kl_top1(ref[t], row(t));
    a.mean_kl += kl / ref.size();
    a.max_kl = std::max(a.max_kl, kl);
    a.top1 += double(same) / ref.size();
  }
  return a;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The primitives against hand-computed values.

TEST(V4Official, ScaleExponentIsExact) {
  EXPECT_EQ(ro::scale_exponent(448, 448), 0);
  EXPECT_EQ(ro::scale_exponent(448 * (1 + 0x1p-52), 448), 1);  // a rounded log2 would say 0
  EXPECT_EQ(ro::scale_exponent(7, 448), -6);                    // 7 / 448 = 2^-6 exactly
  EXPECT_EQ(ro::scale_exponent(7.0625, 448), -5);
  EXPECT_EQ(ro::scale_exponent(3, 448), -7);
  EXPECT_EQ(ro::scale_exponent(1e-4, 448), -22);  // the floor: 1e-4 / 448 = 2.23e-7, 2^-22 = 2.38e-7
  EXPECT_EQ(ro::scale_exponent(6, 6), 0);
}

TEST(V4Official, ActQuantPerBlockOf128) {
  std::vector<double> x(4 * 128 + 64, 0.0);
  // Block 0: amax 3 -> s = 2^-7; x/s on the E4M3 grid (step 1 in [8,16), 32 in [256,512)).
  x[0] = 3.0;               // 384: exact
  x[1] = 0.1;               // 12.8 -> 13
  x[2] = 8.5 / 128;         // 8.5: a tie -> 8 (even)
  x[3] = 9.5 / 128;         // 9.5: a tie -> 10 (even)
  x[4] = -1.5;              // -192: exact
  x[5] = 2.9;               // 371.2 -> 384
  x[128] = 7.0;             // block 1: amax = 448 * 2^-6 exactly -> s = 2^-6, q = 448
  x[129] = 0.3;             // 19.2 -> 20 (step 2 in [16,32))
  x[256] = 7.0625;          // block 2: just above -> s = 2^-5; 226 -> 224 (step 16 in [128,256))
  x[384] = 1e-5;            // block 3: amax floored at 1e-4 -> s = 2^-22; 41.94 -> 40 (step 4 in [32,64))
  x[512] = 0.75;            // a partial block of 64: s = 2^-9, 384 exact
  const auto q = ro::act_quant(x);
  EXPECT_EQ(q[0], 3.0);
  EXPECT_EQ(q[1], 13.0 / 128);
  EXPECT_EQ(q[2], 8.0 / 128);
  EXPECT_EQ(q[3], 10.0 / 128);
  EXPECT_EQ(q[4], -1.5);
  EXPECT_EQ(q[5], 3.0);
  EXPECT_EQ(q[6], 0.0);
  EXPECT_EQ(q[128], 7.0);
  EXPECT_EQ(q[129], 20.0 / 64);
  EXPECT_EQ(q[256], 224.0 / 32);
  EXPECT_EQ(q[384], 40 * 0x1p-22);
  EXPECT_EQ(q[512], 0.75);
  // Clamping never bites (x/s <= 448 by construction) and every value is a BF16 value.
  for (double v : q) EXPECT_EQ(v, ro::bf16(v));
}

TEST(V4Official, HeadNormInBf16Arithmetic) {
  // q = (1.0078125, -2.015625, 3, 0.5), all BF16 values:
  //   squares 1.01568603515625 -> 1.015625, 4.062744140625 -> 4.0625, 9, 0.25 (bf16 each)
  //   mean 14.328125 / 4 = 3.58203125 -> 3.578125 (bf16 step 2^-6 in [2,4): 229.25 -> 229)
  //   + 1e-6 -> 3.578125; rsqrt = 0.52865488 -> 0.52734375 (step 2^-8: 135.33 -> 135)
  //   products 0.53146362 -> 0.53125, -1.06292725 -> -1.0625, 1.58203125 (a tie, 202.5 steps of
  //   2^-7) -> 1.578125 (even), 0.263671875 exact.
  // In FP32 arithmetic the third would be bf16(3 * 0.52836085) = 1.5859375.
  const auto y = ro::head_rmsnorm_bf16({1.0078125, -2.015625, 3.0, 0.5}, 1e-6);
  ASSERT_EQ(y.size(), 4u);
  EXPECT_EQ(y[0], 0.53125);
  EXPECT_EQ(y[1], -1.0625);
  EXPECT_EQ(y[2], 1.578125);
  EXPECT_EQ(y[3], 0.263671875);
}

TEST(V4Official, OnlineSoftmaxInBlocksOf64) {
  // Two equal scores in different 64-blocks, the 63 entries between them -1: each weighs
  // exp(0) = 1 against an unscaled sink of exp(sink - max) = 1, so out = bf16((a + b) / 3).
  const std::vector<double> a = {2, 1}, b = {2, 3};
  std::vector<const std::vector<double>*> list(65, nullptr);
  list[0] = &a;
  list[64] = &b;
  auto out = ro::sparse_attention({1, 0}, list, /*sink=*/1.0, /*scale=*/0.5);  // scores 1 and 1
  EXPECT_EQ(out[0], ro::bf16(4.0 / 3));
  EXPECT_EQ(out[1], ro::bf16(4.0 / 3));

  // Against a plain softmax with the sink: 300 random entries, some -1, rising scores so the
  // running max moves between blocks. Only the BF16 probabilities and the BF16 output differ.
  std::mt19937 rng(5);
  std::normal_distribution<double> nd;
  const int64_t D = 128;
  std::vector<double> q(D);
  for (double& v : q) v = ro::bf16(nd(rng));
  std::vector<std::vector<double>> keys(300, std::vector<double>(D));
  std::vector<const std::vector<double>*> entries;
  for (int64_t j = 0; j < 300; ++j) {
    for (int64_t k = 0; k < D; ++k) keys[j][k] = ro::bf16(nd(rng) + 0.001 * j * (q[k] > 0 ? 1 : -1));
    entries.push_back(j % 7 == 3 ? nullptr : &keys[j]);
  }
  const double scale = 1 / std::sqrt(double(D)), sink = 0.5;
  out = ro::sparse_attention(q, entries, sink, scale);
  std::vector<double> z;
  double mx = sink;
  for (const auto* e : entries)
    if (e) {
      double dot = 0;
      for (int64_t k = 0; k < D; ++k) dot += q[k] * (*e)[k];
      z.push_back(dot * scale);
      mx = std::max(mx, z.back());
    }
  double den = std::exp(sink - mx);
  for (double v : z) den += std::exp(v - mx);
  std::vector<double> want(D, 0.0);
  size_t i = 0;
  for (const auto* e : entries)
    if (e) {
      for (int64_t k = 0; k < D; ++k) want[k] += std::exp(z[i] - mx) / den * (*e)[k];
      ++i;
    }
  double worst = 0, vmax = 0;
  for (int64_t k = 0; k < D; ++k) {
    worst = std::max(worst, std::fabs(out[k] - want[k]));
    vmax = std::max(vmax, std::fabs(want[k]));
    EXPECT_EQ(out[k], ro::bf16(out[k]));
  }
  EXPECT_LT(worst, 1e-2 * vmax);
}

TEST(V4Official, TopKTiesGoToTheLowerIndex) {
  const std::vector<double> s = {1, 3, 3, 2, 3, 0};
  EXPECT_EQ(ro::topk(s, 2), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(ro::topk(s, 4), (std::vector<int64_t>{1, 2, 4, 3}));
  EXPECT_EQ(ro::topk(s, 10), (std::vector<int64_t>{1, 2, 4, 3, 0, 5}));
}

// ---------------------------------------------------------------------------------------------
// The official mode against the reference's FP64 mode: rounding changes something, not much.

TEST(V4Official, ReferenceOfficialStaysCloseToFp64) {
  const auto& fp64 = reference(false, RefNumerics::kFp64);
  const auto& off = reference(false, RefNumerics::kOfficial);
  ASSERT_EQ(fp64.size(), size_t(kPositions));
  ASSERT_EQ(off.size(), size_t(kPositions));
  const Agreement a = agreement(fp64, [&](size_t t) { return off[t].data(); });
  std::printf("reference official vs fp64 (native, %lld positions): mean KL %.3e nats, max %.3e, top-1 agreement %.3f\n",
              static_cast<long long>(kPositions), a.mean_kl, a.max_kl, a.top1);
  RecordProperty("official_vs_fp64_mean_kl", std::to_string(a.mean_kl));
  RecordProperty("official_vs_fp64_top1", std::to_string(a.top1));
  EXPECT_GT(a.mean_kl, 0.0) << "official rounding changed nothing";
  EXPECT_LT(a.mean_kl, 0.05);
}

// ---------------------------------------------------------------------------------------------
// The engine's official numerics against the reference's: prefill (all logits) and token-by-token
// decode, each within mean KL 2e-4 nats and 98% top-1 agreement. The bound is tight on purpose: on
// this checkpoint ulp-level changes already cost about 1e-4 nats (summing the BF16 / FP8 GEMMs in
// FP32 instead of exactly: 1.3e-4 native, 0 dense), and breaking BF16 index-score ties the other
// way 6.5e-4 (top-1 95%), so only the official rounding steps, followed closely, pass.

namespace {

void expect_engine_matches_reference(bool dense) {
  const char* mode = dense ? "dense" : "native";
  const auto& ref = reference(dense, RefNumerics::kOfficial);
  auto engine = Engine::load(official_dir());
  const int64_t vocab = engine->config().vocab;
  ASSERT_EQ(int64_t(ref[0].size()), vocab);
  const SessionOptions opts{dense ? AttentionMode::kDense : AttentionMode::kNative, KvFormat::kBf16, false, Numerics::kOfficial};

  std::vector<float> prefill;
  engine->new_session(opts)->prefill(prompt(), &prefill);
  ASSERT_EQ(int64_t(prefill.size()), kPositions * vocab);
  std::vector<float> decode;
  auto s = engine->new_session(opts);
  for (int32_t tok : prompt()) {
    const auto got = s->decode(tok);
    decode.insert(decode.end(), got.begin(), got.end());
  }

  // The same engine in fp32 numerics, for scale: on this deliberately calm checkpoint the official
  // steps are worth little (fp32 is 2.8e-5 nats from the official reference natively, 4.1e-5
  // dense; the engine's official mode 1.8e-5 / 1.9e-5), so official must at least come closer.
  std::vector<float> fp32;
  engine->new_session({opts.attention, KvFormat::kBf16, false, Numerics::kFp32})->prefill(prompt(), &fp32);
  const Agreement f = agreement(ref, [&](size_t t) { return fp32.data() + t * vocab; });
  std::printf("engine %s fp32 prefill vs reference official: mean KL %.3e nats, max %.3e, top-1 agreement %.3f\n", mode, f.mean_kl,
              f.max_kl, f.top1);

  for (const auto& [how, logits] : {std::pair<const char*, const std::vector<float>*>{"prefill", &prefill}, {"decode", &decode}}) {
    const Agreement a = agreement(ref, [&](size_t t) { return logits->data() + t * vocab; });
    EXPECT_LT(a.mean_kl, f.mean_kl) << mode << " " << how << ": official no closer to the reference than fp32";
    std::printf("engine %s %s vs reference official: mean KL %.3e nats, max %.3e, top-1 agreement %.3f\n", mode, how, a.mean_kl,
                a.max_kl, a.top1);
    ::testing::Test::RecordProperty(std::string(mode) + "_" + how + "_mean_kl", std::to_string(a.mean_kl));
    EXPECT_LE(a.mean_kl, 2e-4) << mode << " " << how;
    EXPECT_GE(a.top1, 0.98) << mode << " " << how;
  }
}

}  // namespace

TEST(V4Official, EngineMatchesReferenceNative) { expect_engine_matches_reference(false); }

TEST(V4Official, EngineMatchesReferenceDense) { expect_engine_matches_reference(true); }
