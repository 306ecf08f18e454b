// The DeepSeek-V4 engine on the synthetic v4-tiny preset: the timeline invariants (prefill = chunked
// prefill = decode, snapshot/restore, thread counts) and exact accounting against the analytic model.
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "engine/core/thread_pool.h"
#include "engine/models/cost_model.h"
#include "engine/runtime/engine.h"
#include "engine/synth/synth.h"
#include "engine/models/presets.h"
#include "tests/test_util.h"
#include "tests/v4_reference.h"

using namespace v4b;

namespace {

// One synthesised checkpoint shared by every test in this file.
const std::string& tiny_dir() {
  static test::TempDir dir;
  static const std::string path = [] {
    const std::string p = (dir.path / "v4-tiny").string();
    write_synthetic_checkpoint(preset_config_json("v4-tiny"), p, 7);
    return p;
  }();
  return path;
}

std::vector<int32_t> tokens(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % 512);
  return t;
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }

double max_abs(std::span<const float> a) {
  double m = 0;
  for (float v : a) m = std::max(m, std::fabs(double(v)));
  return m;
}

}  // namespace

TEST(DeepSeekV4, LogitsAreFiniteAndVary) {
  auto engine = Engine::load(tiny_dir());
  auto s = engine->new_session();
  auto toks = tokens(40, 1);
  auto logits = s->prefill(toks);
  ASSERT_EQ(logits.size(), 512u);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
  EXPECT_GT(max_abs(logits), 1e-3);
  EXPECT_EQ(s->position(), 40);
}

TEST(DeepSeekV4, DecodeAndChunkedPrefillMatchOneShotPrefill) {
  auto engine = Engine::load(tiny_dir());
  const auto toks = tokens(300, 2);  // crosses CSA blocks, one HCA block and the 128-token window
  std::vector<float> all;
  auto one = engine->new_session();
  one->prefill(toks, &all);
  for (int64_t chunk : {1, 7, 128, 130}) {
    auto s = engine->new_session();
    for (int64_t i = 0; i < 300; i += chunk) {
      const int64_t n = std::min<int64_t>(chunk, 300 - i);
      auto l = s->prefill(std::span<const int32_t>(toks.data() + i, n));
      const std::span<const float> ref(all.data() + (i + n - 1) * 512, 512);
      ASSERT_LT(max_abs_diff(l, ref), 2e-3 * (1 + max_abs(ref))) << "chunk " << chunk << " at " << i + n;
    }
  }
}

TEST(DeepSeekV4, SnapshotRestoreContinuesIdentically) {
  auto engine = Engine::load(tiny_dir());
  const auto toks = tokens(150, 3);
  auto s = engine->new_session();
  s->prefill(std::span<const int32_t>(toks.data(), 100));
  auto snap = s->snapshot();
  auto a = copy(s->prefill(std::span<const int32_t>(toks.data() + 100, 50)));
  s->restore(*snap);
  EXPECT_EQ(s->position(), 100);
  auto b = s->prefill(std::span<const int32_t>(toks.data() + 100, 50));
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
  s->reset();
  EXPECT_EQ(s->position(), 0);
  EXPECT_EQ(s->kv_bytes().cache(), 0);
}

TEST(DeepSeekV4, OneAndTwoThreadsAgree) {
  ThreadPool one(1), two(2);
  auto e1 = Engine::load(tiny_dir(), {&one});
  auto e2 = Engine::load(tiny_dir(), {&two});
  const auto toks = tokens(60, 4);
  auto a = copy(e1->new_session()->prefill(toks));  // copied: the span dies with its temporary session
  auto s2 = e2->new_session();
  auto b = s2->prefill(toks);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
}

TEST(DeepSeekV4, KvBytesEqualAnalyticModel) {
  auto engine = Engine::load(tiny_dir());
  for (KvFormat f : {KvFormat::kBf16, KvFormat::kFp8}) {
    auto s = engine->new_session({AttentionMode::kNative, f});
    int64_t done = 0;
    for (int64_t len : {1, 127, 128, 129, 511, 512, 4096}) {
      const auto toks = tokens(len - done, 5);
      s->prefill(toks);
      done = len;
      const KvBytes got = s->kv_bytes(), want = kv_bytes(engine->config(), len, f);
      for (int k = 0; k < kNumKvKinds; ++k)
        EXPECT_EQ(got.by_kind[k], want.by_kind[k]) << kv_kind_name(static_cast<KvKind>(k)) << " at " << len << " "
                                                   << kv_format_name(f);
    }
  }
}

TEST(DeepSeekV4, DecodeFlopCountersMatchAnalytic) {
  auto engine = Engine::load(tiny_dir());
  auto s = engine->new_session();
  const auto toks = tokens(300, 6);
  s->prefill(std::span<const int32_t>(toks.data(), 299));
  s->reset_counters();
  s->decode(toks[299]);
  const DecodeFlops want = decode_flops(engine->config(), 300);
  for (int c = 0; c < kNumFlopCategories; ++c) {
    const auto cat = static_cast<FlopCategory>(c);
    if (cat == FlopCategory::kElementwise) continue;
    const double got = static_cast<double>(s->counters().get(cat).flops), exp = static_cast<double>(want[cat]);
    EXPECT_NEAR(got, exp, 0.01 * exp) << flop_category_name(cat);
  }
}

TEST(DeepSeekV4, StorageFormatDoesNotChangeNumerics) {
  // The KV path is QDQ'd to FP8 / FP4 before it is cached, so both layouts hold the same values.
  auto engine = Engine::load(tiny_dir());
  const auto toks = tokens(200, 8);
  auto a = engine->new_session({AttentionMode::kNative, KvFormat::kBf16});
  auto b = engine->new_session({AttentionMode::kNative, KvFormat::kFp8});
  auto la = copy(a->prefill(toks));
  auto lb = b->prefill(toks);
  EXPECT_LT(max_abs_diff(la, lb), 1e-2 * (1 + max_abs(la)));
  EXPECT_LT(b->kv_bytes().cache(), a->kv_bytes().cache());
}

TEST(DeepSeekV4, WindowAndDenseAgreeWithinTheWindow) {
  auto engine = Engine::load(tiny_dir());
  const auto toks = tokens(128, 9);
  auto w = engine->new_session({AttentionMode::kWindow, KvFormat::kBf16});
  auto d = engine->new_session({AttentionMode::kDense, KvFormat::kBf16});
  auto lw = copy(w->prefill(toks));
  auto ld = d->prefill(toks);
  EXPECT_EQ(0, std::memcmp(lw.data(), ld.data(), lw.size() * 4));
  // One more token and they part: dense still sees token 0.
  auto lw2 = copy(w->decode(5));
  auto ld2 = d->decode(5);
  EXPECT_GT(max_abs_diff(lw2, ld2), 0.0);
}

TEST(DeepSeekV4, AgreesWithDoublePrecisionReference) {
  // 300 positions: CSA blocks, an HCA block (128) and the window (128) are all crossed.
  auto engine = Engine::load(tiny_dir());
  const auto toks = tokens(300, 10);
  for (bool dense : {false, true}) {
    auto s = engine->new_session({dense ? AttentionMode::kDense : AttentionMode::kNative, KvFormat::kBf16});
    std::vector<float> all;
    s->prefill(toks, &all);
    const auto ref = test::v4_reference_logits(tiny_dir(), std::vector<int>(toks.begin(), toks.end()), dense);
    double worst = 0, top1 = 0, sum = 0;
    int64_t worst_at = 0;
    for (int64_t t = 0; t < 300; ++t) {
      double num = 0, den = 0;
      int64_t arg_e = 0, arg_r = 0;
      for (int64_t v = 0; v < 512; ++v) {
        const double e = all[t * 512 + v], r = ref[t][v];
        num += (e - r) * (e - r);
        den += r * r;
        if (e > all[t * 512 + arg_e]) arg_e = v;
        if (r > ref[t][arg_r]) arg_r = v;
      }
      const double err = std::sqrt(num / den);
      sum += err;
      if (err > worst) worst = err, worst_at = t;
      top1 += arg_e == arg_r;
    }
    // FP32 engine vs FP64 reference through FP8/FP4 QDQ steps: a last-bit difference can move one
    // value by a whole E4M3 step (spec §7.6), so the bound is on normalised error, not bits.
    EXPECT_LT(worst, 1e-2) << (dense ? "dense" : "native") << " at position " << worst_at;
    EXPECT_LT(sum / 300, 1e-3) << (dense ? "dense" : "native");
    EXPECT_GE(top1 / 300, 0.99) << (dense ? "dense" : "native");
    RecordProperty(dense ? "dense_worst_nmse" : "native_worst_nmse", std::to_string(worst));
    std::printf("%s: normalised logit error mean %.2e, worst %.2e (position %ld), top-1 agreement %.3f\n", dense ? "dense" : "native",
                sum / 300, worst, static_cast<long>(worst_at), top1 / 300);
  }
}
