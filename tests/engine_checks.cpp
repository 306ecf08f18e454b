#include "tests/engine_checks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "common/errors.h"
#include "engine/core/thread_pool.h"
#include "engine/runtime/engine.h"

namespace v4b::test {

std::vector<int32_t> tokens(int64_t n, uint32_t seed, int64_t vocab) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

std::vector<float> copy(std::span<const float> s) { return {s.begin(), s.end()}; }

double max_abs(std::span<const float> a) {
  double m = 0;
  for (float v : a) m = std::max(m, std::fabs(double(v)));
  return m;
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

namespace {

// Logits that two paths through the same timeline give (GEMM vs GEMV, other chunkings): within
// 2e-3 (1 + max|logit|) each in fp32 numerics. Official numerics round to BF16 and quantise GEMM
// inputs to E4M3, where a last-bit difference of summation order becomes a whole step (spec §7.6),
// so there the distributions are compared, as the spec asks: mean KL below 1e-3 nats (measured on
// v4-tiny: 2e-4 to 5e-4 between decode and prefill) and top-1 agreement at least 95%.
class PathAgreement {
 public:
  explicit PathAgreement(bool official) : official_(official) {}
  void add(std::span<const float> got, std::span<const float> want, const std::string& where) {
    if (!official_) {
      EXPECT_LT(max_abs_diff(got, want) / (1 + max_abs(want)), 2e-3) << where;
      return;
    }
    auto log_softmax = [](std::span<const float> l) {
      const double mx = *std::max_element(l.begin(), l.end());
      double z = 0;
      for (float v : l) z += std::exp(v - mx);
      std::vector<double> out;
      for (float v : l) out.push_back(v - mx - std::log(z));
      return out;
    };
    const auto p = log_softmax(want), q = log_softmax(got);
    double kl = 0;
    for (size_t v = 0; v < p.size(); ++v) kl += std::exp(p[v]) * (p[v] - q[v]);
    kl_ += kl;
    same_top1_ += std::max_element(got.begin(), got.end()) - got.begin() == std::max_element(want.begin(), want.end()) - want.begin();
    ++n_;
  }
  ~PathAgreement() {
    if (n_ == 0) return;
    EXPECT_LT(kl_ / n_, 1e-3) << "mean KL over " << n_ << " positions";
    EXPECT_GE(same_top1_ * 20, n_ * 19) << same_top1_ << " of " << n_ << " top-1 tokens agree";
  }

 private:
  bool official_;
  double kl_ = 0;
  int64_t same_top1_ = 0, n_ = 0;
};

}  // namespace

void expect_chunked_prefill_matches(const std::string& dir, int64_t n, const std::vector<int64_t>& chunks, uint32_t seed,
                                    Numerics numerics) {
  auto engine = Engine::load(dir);
  const int64_t vocab = engine->config().vocab;
  const auto toks = tokens(n, seed, vocab);
  const SessionOptions o{AttentionMode::kNative, KvFormat::kBf16, false, numerics};
  std::vector<float> all;
  engine->new_session(o)->prefill(toks, &all);
  PathAgreement agree(resolve_numerics(engine->config(), numerics) == Numerics::kOfficial);
  for (int64_t chunk : chunks) {
    auto s = engine->new_session(o);
    for (int64_t i = 0; i < n; i += chunk) {
      const int64_t len = std::min<int64_t>(chunk, n - i);
      auto l = s->prefill(std::span<const int32_t>(toks.data() + i, len));
      const std::span<const float> ref(all.data() + (i + len - 1) * vocab, vocab);
      agree.add(l, ref, "chunk " + std::to_string(chunk) + " at " + std::to_string(i + len));
    }
  }
}

void expect_snapshot_restore_identical(const std::string& dir, KvFormat format, int64_t n1, int64_t n2) {
  auto engine = Engine::load(dir);
  const auto toks = tokens(n1 + n2, 3, engine->config().vocab);
  auto s = engine->new_session({AttentionMode::kNative, format});
  s->prefill(std::span<const int32_t>(toks.data(), n1));
  auto snap = s->snapshot();
  auto a = copy(s->prefill(std::span<const int32_t>(toks.data() + n1, n2)));
  s->restore(*snap);
  EXPECT_EQ(s->position(), n1);
  auto b = s->prefill(std::span<const int32_t>(toks.data() + n1, n2));
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
  s->reset();
  EXPECT_EQ(s->position(), 0);
  EXPECT_EQ(s->kv_bytes().cache(), 0);
}

void expect_thread_counts_agree(const std::string& dir, int64_t n, Numerics numerics) {
  ThreadPool one(1), two(2);
  auto e1 = Engine::load(dir, {&one});
  auto e2 = Engine::load(dir, {&two});
  const auto toks = tokens(n, 4, e1->config().vocab);
  const SessionOptions o{AttentionMode::kNative, KvFormat::kBf16, false, numerics};
  auto a = copy(e1->new_session(o)->prefill(toks));
  auto s2 = e2->new_session(o);
  auto b = s2->prefill(toks);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
}

void expect_kv_bytes_exact(const std::string& dir, const std::vector<int64_t>& lengths) {
  auto engine = Engine::load(dir);
  for (KvFormat f : {KvFormat::kBf16, KvFormat::kFp8}) {
    auto s = engine->new_session({AttentionMode::kNative, f});
    int64_t done = 0;
    for (int64_t len : lengths) {
      s->prefill(tokens(len - done, 5, engine->config().vocab));
      done = len;
      const KvBytes got = s->kv_bytes(), want = kv_bytes(engine->config(), len, f);
      for (int k = 0; k < kNumKvKinds; ++k)
        EXPECT_EQ(got.by_kind[k], want.by_kind[k]) << kv_kind_name(static_cast<KvKind>(k)) << " at " << len << " " << kv_format_name(f);
      EXPECT_GT(got.cache(), 0);
    }
  }
}

void expect_batched_step_matches(const std::string& dir, AttentionMode mode, Numerics numerics) {
  auto engine = Engine::load(dir);
  PathAgreement agree(resolve_numerics(engine->config(), numerics) == Numerics::kOfficial);
  const int64_t vocab = engine->config().vocab;
  // Four timelines: already at 5, 40 and 130 tokens, and a fresh one.
  const std::vector<int64_t> start = {5, 40, 130, 0};
  std::vector<std::vector<int32_t>> toks;
  std::vector<std::unique_ptr<Session>> batched, alone;
  for (size_t i = 0; i < start.size(); ++i) {
    toks.push_back(tokens(start[i] + 20, 11 + static_cast<uint32_t>(i), vocab));
    for (auto* group : {&batched, &alone}) {
      group->push_back(engine->new_session({mode, KvFormat::kBf16, false, numerics}));
      if (start[i] > 0) group->back()->prefill(std::span<const int32_t>(toks[i].data(), start[i]));
    }
  }
  // Step 0 appends a 7-token chunk to the second and a 3-token prompt to the fresh one beside single
  // decodes; steps 1 and 2 decode one token each everywhere.
  std::vector<int64_t> pos = start;
  for (int step = 0; step < 3; ++step) {
    std::vector<StepItem> items;
    std::vector<int64_t> n(start.size(), 1);
    if (step == 0) n[1] = 7, n[3] = 3;
    for (size_t i = 0; i < start.size(); ++i) {
      items.push_back({batched[i].get(), std::span<const int32_t>(toks[i].data() + pos[i], n[i])});
      batched[i]->reset_counters();
      alone[i]->reset_counters();
    }
    engine->step(items);
    int64_t batched_gemm = 0, alone_gemm = 0;
    for (size_t i = 0; i < start.size(); ++i) {
      const auto want = alone[i]->prefill(items[i].tokens);
      const auto got = batched[i]->logits();
      ASSERT_EQ(batched[i]->position(), pos[i] + n[i]);
      ASSERT_EQ(got.size(), want.size());
      agree.add(got, want, "session " + std::to_string(i) + " step " + std::to_string(step));
      batched_gemm += batched[i]->counters().get(FlopCategory::kWeightGemm).flops;
      alone_gemm += alone[i]->counters().get(FlopCategory::kWeightGemm).flops;
      EXPECT_EQ(batched[i]->counters().get(FlopCategory::kAttentionCore).flops,
                alone[i]->counters().get(FlopCategory::kAttentionCore).flops) << "session " << i;
      pos[i] += n[i];
    }
    EXPECT_NEAR(static_cast<double>(batched_gemm), static_cast<double>(alone_gemm), static_cast<double>(start.size()));
  }

  // Refusals leave every session where it was.
  const int32_t t = 1;
  const std::span<const int32_t> one(&t, 1);
  auto other = Engine::load(dir)->new_session({mode, KvFormat::kBf16, false, numerics});
  const AttentionMode other_mode = mode == AttentionMode::kNative ? AttentionMode::kDense : AttentionMode::kNative;
  auto mixed = engine->new_session({other_mode, KvFormat::kBf16, false, numerics});
  // Other arithmetic: BF16 GEMM operands in fp32 numerics (for official sessions, other numerics).
  const bool official = resolve_numerics(engine->config(), numerics) == Numerics::kOfficial;
  auto rounded = engine->new_session({mode, KvFormat::kBf16, /*bf16_activations=*/!official, Numerics::kFp32});
  const std::vector<std::vector<StepItem>> bad = {
      {{batched[0].get(), one}, {batched[0].get(), one}},
      {{batched[0].get(), one}, {other.get(), one}},
      {{batched[0].get(), one}, {mixed.get(), one}},
      {{batched[0].get(), one}, {rounded.get(), one}},
  };
  for (const auto& items : bad) {
    EXPECT_THROW(engine->step(items), UsageError);
    EXPECT_EQ(batched[0]->position(), pos[0]);
    EXPECT_EQ(mixed->position(), 0);
    EXPECT_EQ(rounded->position(), 0);
  }
}

void expect_decode_flops_match(const std::string& dir, int64_t ctx) {
  auto engine = Engine::load(dir);
  auto s = engine->new_session();
  const auto toks = tokens(ctx, 6, engine->config().vocab);
  s->prefill(std::span<const int32_t>(toks.data(), ctx - 1));
  s->reset_counters();
  s->decode(toks[ctx - 1]);
  const DecodeFlops want = decode_flops(engine->config(), ctx);
  for (int c = 0; c < kNumFlopCategories; ++c) {
    const auto cat = static_cast<FlopCategory>(c);
    if (cat == FlopCategory::kElementwise) continue;
    const double got = static_cast<double>(s->counters().get(cat).flops), exp = static_cast<double>(want[cat]);
    EXPECT_NEAR(got, exp, 0.01 * exp) << flop_category_name(cat) << " at ctx " << ctx;
  }
}

}  // namespace v4b::test
