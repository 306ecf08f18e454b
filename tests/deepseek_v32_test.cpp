// The DeepSeek-V3.2 / V3 engine on synthetic v32-tiny checkpoints: the timeline invariants (prefill
// = chunked prefill = decode, snapshot/restore, thread counts), exact accounting against the
// analytic model, attention modes, and agreement with an independent double-precision reference.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <numbers>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/engine_checks.h"

#include "engine/core/dtypes.h"
#include "common/errors.h"
#include "engine/core/thread_pool.h"
#include "engine/io/safetensors.h"
#include "engine/models/cost_model.h"
#include "engine/models/presets.h"
#include "engine/runtime/engine.h"
#include "engine/synth/synth.h"
#include "tests/test_util.h"

using namespace v4b;
using namespace v4b::test;

namespace {

constexpr int64_t kVocab = 512;

// v32-tiny turned into DeepSeek-V3 (same MLA, no indexer).
nlohmann::json v3_tiny_config() {
  nlohmann::json j = preset_config_json("v32-tiny");
  j["model_type"] = "deepseek_v3";
  for (const char* k : {"index_n_heads", "index_head_dim", "index_topk"}) j.erase(k);
  return j;
}

// v32-tiny cut to two layers (one dense FFN, one MoE) for the reference comparison.
nlohmann::json v32_two_layer_config() {
  nlohmann::json j = preset_config_json("v32-tiny");
  j["num_hidden_layers"] = 2;
  return j;
}

std::string synth_dir(const std::string& name, const nlohmann::json& config) {
  static test::TempDir dir;
  const std::string p = (dir.path / name).string();
  write_synthetic_checkpoint(config, p, 11);
  return p;
}

// Synthesised once and shared by every test in this file.
const std::string& v32_dir() {
  static const std::string p = synth_dir("v32-tiny", preset_config_json("v32-tiny"));
  return p;
}
const std::string& v3_dir() {
  static const std::string p = synth_dir("v3-tiny", v3_tiny_config());
  return p;
}







}  // namespace

TEST(DeepSeekV32, LogitsAreFiniteAndVary) {
  for (const std::string& dir : {v32_dir(), v3_dir()}) {
    auto engine = Engine::load(dir);
    auto s = engine->new_session();
    auto logits = copy(s->prefill(tokens(40, 1)));
    ASSERT_EQ(logits.size(), static_cast<size_t>(kVocab));
    for (float v : logits) ASSERT_TRUE(std::isfinite(v));
    EXPECT_GT(max_abs(logits), 1e-3);
    auto next = s->decode(3);
    EXPECT_GT(max_abs_diff(logits, next), 1e-4);  // the logits move with the timeline
    EXPECT_EQ(s->position(), 41);
  }
}

TEST(DeepSeekV32, DecodeAndChunkedPrefillMatchOneShotPrefill) {
  expect_chunked_prefill_matches(v32_dir(), 100, {1, 7, 64}, 2);  // well past index_topk (16): the indexer selects
}

TEST(DeepSeekV32, SnapshotRestoreContinuesIdentically) { expect_snapshot_restore_identical(v32_dir(), KvFormat::kFp8, 50, 30); }

TEST(DeepSeekV32, BatchedStepMatchesSessionsAlone) {
  expect_batched_step_matches(v32_dir(), AttentionMode::kNative);
  expect_batched_step_matches(v32_dir(), AttentionMode::kDense);
}

TEST(DeepSeekV32, OneAndTwoThreadsAgree) { expect_thread_counts_agree(v32_dir(), 60); }

TEST(DeepSeekV32, KvBytesEqualAnalyticModel) { expect_kv_bytes_exact(v32_dir(), {1, 127, 128, 129, 511}); }
TEST(DeepSeekV32, V3KvBytesEqualAnalyticModel) { expect_kv_bytes_exact(v3_dir(), {1, 127, 128, 129, 511}); }

TEST(DeepSeekV32, DecodeFlopCountersMatchAnalytic) {
  expect_decode_flops_match(v32_dir(), 10);   // fewer tokens than index_topk: all attended
  expect_decode_flops_match(v32_dir(), 100);  // the indexer's top-16 of 100
  expect_decode_flops_match(v3_dir(), 100);
}

TEST(DeepSeekV32, DenseEqualsNativeWithoutSelection) {
  // V3 has no indexer: native is dense. V3.2 attends to every token while ctx <= index_topk.
  for (const auto& [dir, n] : {std::pair{v3_dir(), int64_t{40}}, std::pair{v32_dir(), int64_t{16}}}) {
    auto engine = Engine::load(dir);
    const auto toks = tokens(n, 9);
    auto native = engine->new_session({AttentionMode::kNative, KvFormat::kBf16});
    auto dense = engine->new_session({AttentionMode::kDense, KvFormat::kBf16});
    auto a = copy(native->prefill(toks));
    auto b = dense->prefill(toks);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << dir;
  }
  // Past index_topk the V3.2 modes part; dense keeps no index keys.
  auto engine = Engine::load(v32_dir());
  const auto toks = tokens(40, 9);
  auto native = engine->new_session({AttentionMode::kNative, KvFormat::kBf16});
  auto dense = engine->new_session({AttentionMode::kDense, KvFormat::kBf16});
  auto a = copy(native->prefill(toks));
  auto b = dense->prefill(toks);
  EXPECT_GT(max_abs_diff(a, b), 0.0);
  EXPECT_EQ(dense->kv_bytes()[KvKind::kIndexKeys], 0);
  EXPECT_EQ(dense->kv_bytes()[KvKind::kMlaLatent], native->kv_bytes()[KvKind::kMlaLatent]);
}

TEST(DeepSeekV32, WindowModeIsRejected) {
  for (const std::string& dir : {v32_dir(), v3_dir()}) {
    auto engine = Engine::load(dir);
    EXPECT_THROW(engine->new_session({AttentionMode::kWindow, KvFormat::kBf16}), UsageError);
  }
}

TEST(DeepSeekV32, Fp8CacheQuantisesButStaysClose) {
  // The 656-byte rows and 132-byte keys quantise (unlike V4, nothing is QDQ'd before caching).
  auto engine = Engine::load(v32_dir());
  const auto toks = tokens(30, 8);
  auto a = engine->new_session({AttentionMode::kNative, KvFormat::kBf16});
  auto b = engine->new_session({AttentionMode::kNative, KvFormat::kFp8});
  auto la = copy(a->prefill(toks));
  auto lb = b->prefill(toks);
  EXPECT_GT(max_abs_diff(la, lb), 0.0);
  EXPECT_LT(max_abs_diff(la, lb), 0.25 * (1 + max_abs(la)));
  EXPECT_LT(b->kv_bytes().cache(), a->kv_bytes().cache());
}

// ---------------------------------------------------------------------------------------------
// Official numerics (V3.2's inference code: BF16 tensors, act_quant + FP8 GEMMs, FP8 index queries
// and keys): against fp32, between prefill and decode, and in batched steps.

namespace {

const std::string& gqa_dir() {
  static const std::string p = synth_dir("gqa-tiny", preset_config_json("gqa-tiny"));
  return p;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

SessionOptions official_opts(KvFormat format = KvFormat::kBf16, AttentionMode mode = AttentionMode::kNative) {
  return {mode, format, false, Numerics::kOfficial};
}

struct LogitGap {
  double mean = 0, worst = 0;
  int64_t same_top1 = 0, changed = 0;
};

// Normalised L2 error ||a - b|| / ||a|| of each position's logits, and top-1 agreement.
LogitGap logit_gap(const std::vector<float>& exact, const std::vector<float>& other, int64_t n, int64_t vocab) {
  LogitGap g;
  for (int64_t i = 0; i < n; ++i) {
    const std::span<const float> a(exact.data() + i * vocab, vocab), b(other.data() + i * vocab, vocab);
    double num = 0, den = 0;
    for (int64_t v = 0; v < vocab; ++v) {
      num += (double(a[v]) - b[v]) * (double(a[v]) - b[v]);
      den += double(a[v]) * a[v];
    }
    const double e = std::sqrt(num / den);
    g.mean += e / n;
    g.worst = std::max(g.worst, e);
    g.changed += e > 0;
    g.same_top1 += std::max_element(a.begin(), a.end()) - a.begin() == std::max_element(b.begin(), b.end()) - b.begin();
  }
  return g;
}

}  // namespace

TEST(DeepSeekV32, OfficialNumericsStayCloseToFp32) {
  // FP8 activations (act_quant: E4M3, 2^-4 relative steps) in front of every FP8 GEMM and BF16
  // tensors move each position's logits by a few percent on this random 3-layer model, and in
  // native mode the indexer's top-16 then picks differently at some positions (its FP8 queries and
  // keys do so too): that is the larger part of the gap, as the fp32 fp8-cache row shows (FP8
  // latents alone move fp32 by 5.3e-2, top-1 181 / 200). Measured (200 positions, seed 12):
  //   native, BF16 cache: mean 8.9e-2, worst 0.41, top-1 175 / 200
  //   native, fp8 cache:  mean 8.9e-2, worst 0.41, top-1 173 / 200
  //   dense (no indexer): mean 2.3e-2, worst 0.35, top-1 194 / 200
  // Bounds: means at about 1.7x / 2x the measured ones; top-1 at 90% where the indexer does not
  // pick (dense), 80% in native (selection flips can change the argmax at near-ties).
  auto engine = Engine::load(v32_dir());
  const int64_t n = 200, vocab = engine->config().vocab;
  const auto toks = tokens(n, 12);
  struct Case {
    AttentionMode mode;
    KvFormat format;
    double max_mean;
    int64_t min_top1;
  };
  for (const Case& c : {Case{AttentionMode::kNative, KvFormat::kBf16, 0.15, n * 8 / 10},
                        Case{AttentionMode::kNative, KvFormat::kFp8, 0.15, n * 8 / 10},
                        Case{AttentionMode::kDense, KvFormat::kBf16, 5e-2, n * 9 / 10}}) {
    std::vector<float> exact, official;
    engine->new_session({c.mode, c.format, false, Numerics::kFp32})->prefill(toks, &exact);
    engine->new_session(official_opts(c.format, c.mode))->prefill(toks, &official);
    ASSERT_EQ(official.size(), static_cast<size_t>(n * vocab));
    for (float v : official) ASSERT_TRUE(std::isfinite(v));
    const LogitGap g = logit_gap(exact, official, n, vocab);
    const std::string what = fmt::format("{} mode, {} cache", attention_mode_name(c.mode), c.format == KvFormat::kBf16 ? "bf16" : "fp8");
    std::printf("official vs fp32 (%s): normalised logit error mean %.2e, worst %.2e, top-1 agreement %lld/%lld\n", what.c_str(),
                g.mean, g.worst, static_cast<long long>(g.same_top1), static_cast<long long>(n));
    EXPECT_GE(g.changed, n - 2) << what << ": official left logits as fp32 has them";
    EXPECT_GT(g.mean, 1e-3) << what << ": official changed almost nothing";
    EXPECT_LT(g.mean, c.max_mean) << what;
    EXPECT_GE(g.same_top1, c.min_top1) << what;
  }
}

TEST(DeepSeekV32, NumericsDefaultToFp32AndOfficialIsV32Only) {
  auto engine = Engine::load(v32_dir());
  const auto toks = tokens(40, 5);
  auto dflt = copy(engine->new_session({AttentionMode::kNative, KvFormat::kBf16})->prefill(toks));
  auto fp32 = copy(engine->new_session({AttentionMode::kNative, KvFormat::kBf16, false, Numerics::kFp32})->prefill(toks));
  auto official = copy(engine->new_session(official_opts())->prefill(toks));
  EXPECT_EQ(0, std::memcmp(dflt.data(), fp32.data(), dflt.size() * 4)) << "V3.2's default must stay fp32";
  EXPECT_GT(max_abs_diff(fp32, official), 0.0);
  // Dense GQA and plain V3 (no indexer) have no official numerics.
  for (const std::string& dir : {gqa_dir(), v3_dir()}) {
    auto other = Engine::load(dir);
    EXPECT_THROW(other->new_session(official_opts()), UsageError) << dir;
    EXPECT_NO_THROW(other->new_session({AttentionMode::kNative, KvFormat::kBf16, false, Numerics::kFp32})) << dir;
  }
}

TEST(DeepSeekV32, OfficialPrefillAndDecodeAgree) {
  // Decode (GEMV) and prefill (GEMM) sum in different orders: BF16 rounding can turn a last-bit
  // difference into a BF16 step, act_quant a BF16 step into an E4M3 step, and a near-tie in the
  // indexer's top-16 (or routing) may then go the other way. Most steps agree to FP32 rounding
  // (measured median 1.9e-7), the rest by such flips (57 of 70 below 2e-2, the worst 5e-2 to 0.17
  // as last bits elsewhere change): the median is held to BF16 steps and the flips counted.
  auto engine = Engine::load(v32_dir());
  const int64_t n = 200, vocab = engine->config().vocab;
  const auto toks = tokens(n, 12);
  std::vector<float> full;
  engine->new_session(official_opts())->prefill(toks, &full);
  auto d = engine->new_session(official_opts());
  d->prefill(std::span<const int32_t>(toks.data(), 130));
  std::vector<double> errors;
  std::unique_ptr<Session::Snapshot> snap;
  std::vector<float> first_pass;
  for (int64_t i = 130; i < n; ++i) {
    if (i == 170) snap = d->snapshot();
    const auto got = d->decode(toks[i]);
    const std::span<const float> ref(full.data() + i * vocab, vocab);
    errors.push_back(max_abs_diff(got, ref) / (1 + max_abs(ref)));
    if (i >= 170) first_pass.insert(first_pass.end(), got.begin(), got.end());
  }
  std::printf("official decode vs prefill: median %.2e, worst %.2e\n", median(errors),
              *std::max_element(errors.begin(), errors.end()));
  EXPECT_LT(median(errors), 5e-3);
  EXPECT_GE(std::count_if(errors.begin(), errors.end(), [](double e) { return e < 2e-2; }), 50) << "of 70 decode steps";
  // A restored snapshot repeats the steps bit for bit.
  d->restore(*snap);
  std::vector<float> second_pass;
  for (int64_t i = 170; i < n; ++i) {
    const auto got = d->decode(toks[i]);
    second_pass.insert(second_pass.end(), got.begin(), got.end());
  }
  EXPECT_EQ(0, std::memcmp(first_pass.data(), second_pass.data(), first_pass.size() * 4));
}

TEST(DeepSeekV32, OfficialBatchedStepMatchesSessionsAlone) {
  // The shared timeline check in official numerics (engine_checks.h): sessions at 5, 40 and 130
  // tokens and a fresh one, a chunk and a prompt beside single decodes, and the refusal of a step
  // that mixes official and fp32 sessions.
  expect_batched_step_matches(v32_dir(), AttentionMode::kNative, Numerics::kOfficial);
  expect_batched_step_matches(v32_dir(), AttentionMode::kDense, Numerics::kOfficial);
}

// ---------------------------------------------------------------------------------------------
// An independent reference: the whole two-layer model in double precision, written from spec §2.10
// and the HF / official conventions, straight from the checkpoint's tensors. It uses the
// non-absorbed MLA form (per-head K and V expanded from the latent), a naive Hadamard matrix and
// its own YaRN table. The only thing shared with the engine is the BF16 rounding of what the
// engine's BF16 cache stores (latent, rope key, index key), so both see the same cached values.

namespace {
namespace ref {

using Vec = std::vector<double>;

struct Mat {
  int64_t rows = 0, cols = 0;
  Vec w;
  Vec operator*(const Vec& x) const {
    Vec y(rows, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c) s += w[r * cols + c] * x[c];
      y[r] = s;
    }
    return y;
  }
};

float f32_at(const uint8_t* p, int64_t i) {
  float f;
  std::memcpy(&f, p + 4 * i, 4);
  return f;
}

Vec values(const CheckpointReader& ck, const std::string& name) {
  const TensorInfo& t = ck.at(name);
  Vec v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (t.dtype) {
      case DType::F32: v[i] = f32_at(t.data, i); break;
      case DType::BF16: {
        uint16_t b;
        std::memcpy(&b, t.data + 2 * i, 2);
        v[i] = std::bit_cast<float>(uint32_t{b} << 16);
        break;
      }
      case DType::F8_E4M3: {
        const TensorInfo& s = ck.at(name + "_scale_inv");
        const int64_t cols = t.shape[1], cb = (cols + 127) / 128, r = i / cols, c = i % cols;
        v[i] = double(e4m3_to_float(t.data[i])) * f32_at(s.data, (r / 128) * cb + c / 128);
        break;
      }
      default: ADD_FAILURE() << "unexpected dtype in " << name;
    }
  }
  return v;
}

Mat matrix(const CheckpointReader& ck, const std::string& name) {
  const TensorInfo& t = ck.at(name);
  return {t.shape[0], t.shape[1], values(ck, name)};
}

Vec rms_norm(const Vec& x, const Vec& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1 / std::sqrt(ss / x.size() + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

double bf16(double x) { return bf16_to_float(float_to_bf16(static_cast<float>(x))); }
double silu(double x) { return x / (1 + std::exp(-x)); }

// YaRN-blended inverse frequencies of DeepSeek's precompute_freqs_cis.
Vec yarn_freqs(int64_t dim, double base, double factor, double orig, double beta_fast, double beta_slow) {
  auto corr = [&](double rot) { return dim * std::log(orig / (rot * 2 * std::numbers::pi)) / (2 * std::log(base)); };
  const double low = std::max(std::floor(corr(beta_fast)), 0.0), high = std::min(std::ceil(corr(beta_slow)), dim - 1.0);
  Vec f(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) {
    const double freq = std::pow(base, -double(2 * i) / dim);
    const double ramp = std::clamp((i - low) / (high == low ? high + 0.001 - low : high - low), 0.0, 1.0);
    f[i] = freq / factor * ramp + freq * (1 - ramp);
  }
  return f;
}

// Rotates x[off..off+2*f.size()) at position t: adjacent pairs (interleaved) or (i, i + half).
void rope(double* x, const Vec& f, int64_t t, bool interleaved) {
  const int64_t half = static_cast<int64_t>(f.size());
  for (int64_t i = 0; i < half; ++i) {
    double& a = interleaved ? x[2 * i] : x[i];
    double& b = interleaved ? x[2 * i + 1] : x[i + half];
    const double c = std::cos(t * f[i]), s = std::sin(t * f[i]), a0 = a, b0 = b;
    a = a0 * c - b0 * s;
    b = a0 * s + b0 * c;
  }
}

void hadamard(double* x, int64_t n) {
  Vec y(n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) y[i] += (std::popcount(static_cast<uint64_t>(i & j)) % 2 ? -1.0 : 1.0) * x[j];
  for (int64_t i = 0; i < n; ++i) x[i] = y[i] / std::sqrt(double(n));
}

class DeepSeekV32Model {
 public:
  DeepSeekV32Model(const std::string& dir) : ck_(dir), cfg_(load_model_config(dir)) {
    const auto& m = cfg_;
    freqs_ = yarn_freqs(m.qk_rope_dim, m.rope_theta, m.rope_scaling.factor, double(m.rope_scaling.original_max_position),
                        m.rope_scaling.beta_fast, m.rope_scaling.beta_slow);
    const double ms = 0.1 * m.rope_scaling.mscale_all_dim * std::log(m.rope_scaling.factor) + 1;
    scale_ = ms * ms / std::sqrt(double(m.qk_nope_dim + m.qk_rope_dim));
    embed_ = matrix(ck_, "model.embed_tokens.weight");
    head_ = matrix(ck_, "lm_head.weight");
    norm_ = values(ck_, "model.norm.weight");
    caches_.resize(m.n_layers);
  }

  // Logits after appending `token`.
  Vec step(int32_t token) {
    const auto& m = cfg_;
    Vec h(embed_.w.begin() + token * m.hidden, embed_.w.begin() + (token + 1) * m.hidden);
    for (int64_t l = 0; l < m.n_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      const Vec a = attention(p, caches_[l], rms_norm(h, values(ck_, p + "input_layernorm.weight"), m.rms_eps));
      for (int64_t i = 0; i < m.hidden; ++i) h[i] += a[i];
      const Vec xn = rms_norm(h, values(ck_, p + "post_attention_layernorm.weight"), m.rms_eps);
      const Vec f = m.layers[l].moe ? moe(p, xn) : mlp(p + "mlp.", xn);
      for (int64_t i = 0; i < m.hidden; ++i) h[i] += f[i];
    }
    ++t_;
    return head_ * rms_norm(h, norm_, m.rms_eps);
  }

 private:
  struct Cache {
    std::vector<Vec> k, v, index_keys;  // per token: K [H][qk], V [H][v], index key [D_I]
  };

  const Mat& w(const std::string& name) {
    auto it = mats_.find(name);
    if (it == mats_.end()) it = mats_.emplace(name, matrix(ck_, name)).first;
    return it->second;
  }

  Vec attention(const std::string& p, Cache& c, const Vec& x) {
    const auto& m = cfg_;
    const int64_t H = m.n_heads, NP = m.qk_nope_dim, R = m.qk_rope_dim, QK = NP + R, C = m.kv_lora_rank, V = m.v_head_dim;
    const std::string a = p + "self_attn.";
    const Vec cq = rms_norm(w(a + "q_a_proj.weight") * x, values(ck_, a + "q_a_layernorm.weight"), m.rms_eps);
    Vec q = w(a + "q_b_proj.weight") * cq;
    const Vec kv = w(a + "kv_a_proj_with_mqa.weight") * x;
    Vec latent = rms_norm(Vec(kv.begin(), kv.begin() + C), values(ck_, a + "kv_a_layernorm.weight"), m.rms_eps);
    Vec k_rope(kv.begin() + C, kv.end());
    for (int64_t h = 0; h < H; ++h) rope(q.data() + h * QK + NP, freqs_, t_, true);
    rope(k_rope.data(), freqs_, t_, true);
    for (double& v : latent) v = bf16(v);  // what the BF16 cache holds
    for (double& v : k_rope) v = bf16(v);

    // Expand this token's K and V per head: k = [W_UK c | k_rope], v = W_UV c.
    const Mat& kv_b = w(a + "kv_b_proj.weight");
    Vec k(H * QK), v(H * V);
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t r = 0; r < NP + V; ++r) {
        double s = 0;
        for (int64_t j = 0; j < C; ++j) s += kv_b.w[(h * (NP + V) + r) * C + j] * latent[j];
        if (r < NP) k[h * QK + r] = s;
        else v[h * V + r - NP] = s;
      }
      for (int64_t r = 0; r < R; ++r) k[h * QK + NP + r] = k_rope[r];
    }
    c.k.push_back(k);
    c.v.push_back(v);

    // Lightning indexer: top-k of every causal token.
    const int64_t n = t_ + 1;
    std::vector<int64_t> sel(n);
    for (int64_t s = 0; s < n; ++s) sel[s] = s;
    if (m.family == Family::kDeepSeekV32) {
      const int64_t HI = m.index_heads, DI = m.index_head_dim;
      Vec qi = w(a + "indexer.wq_b.weight") * cq;
      Vec ki = w(a + "indexer.wk.weight") * x;
      double mean = 0, var = 0;
      for (double v2 : ki) mean += v2;
      mean /= DI;
      for (double v2 : ki) var += (v2 - mean) * (v2 - mean);
      const Vec nw = values(ck_, a + "indexer.k_norm.weight"), nb = values(ck_, a + "indexer.k_norm.bias");
      for (int64_t j = 0; j < DI; ++j) ki[j] = (ki[j] - mean) / std::sqrt(var / DI + 1e-6) * nw[j] + nb[j];
      for (int64_t h = 0; h < HI; ++h) {
        rope(qi.data() + h * DI, freqs_, t_, false);
        hadamard(qi.data() + h * DI, DI);
      }
      rope(ki.data(), freqs_, t_, false);
      hadamard(ki.data(), DI);
      for (double& v2 : ki) v2 = bf16(v2);
      c.index_keys.push_back(ki);
      const Vec hw = w(a + "indexer.weights_proj.weight") * x;
      std::vector<std::pair<double, int64_t>> score;
      for (int64_t s = 0; s < n; ++s) {
        double sc = 0;
        for (int64_t h = 0; h < HI; ++h) {
          double dot = 0;
          for (int64_t j = 0; j < DI; ++j) dot += qi[h * DI + j] * c.index_keys[s][j];
          sc += hw[h] / std::sqrt(double(HI)) / std::sqrt(double(DI)) * std::max(dot, 0.0);
        }
        score.push_back({-sc, s});  // sort ascending: highest score first, ties to the lower position
      }
      std::sort(score.begin(), score.end());
      sel.clear();
      for (int64_t i = 0; i < std::min(n, m.index_topk); ++i) sel.push_back(score[i].second);
    }

    Vec o(H * V, 0.0);
    for (int64_t h = 0; h < H; ++h) {
      Vec sc;
      double mx = -1e300;
      for (int64_t s : sel) {
        double dot = 0;
        for (int64_t j = 0; j < QK; ++j) dot += q[h * QK + j] * c.k[s][h * QK + j];
        sc.push_back(dot * scale_);
        mx = std::max(mx, sc.back());
      }
      double sum = 0;
      for (double& e : sc) sum += (e = std::exp(e - mx));
      for (size_t j = 0; j < sel.size(); ++j)
        for (int64_t r = 0; r < V; ++r) o[h * V + r] += sc[j] / sum * c.v[sel[j]][h * V + r];
    }
    return w(a + "o_proj.weight") * o;
  }

  Vec mlp(const std::string& p, const Vec& x) {
    const Vec g = w(p + "gate_proj.weight") * x, u = w(p + "up_proj.weight") * x;
    Vec hid(g.size());
    for (size_t i = 0; i < g.size(); ++i) hid[i] = silu(g[i]) * u[i];
    return w(p + "down_proj.weight") * hid;
  }

  Vec moe(const std::string& p, const Vec& x) {
    const auto& m = cfg_;
    const int64_t E = m.n_routed_experts, per = E / m.n_group;
    const Vec logits = w(p + "mlp.gate.weight") * x, bias = values(ck_, p + "mlp.gate.e_score_correction_bias");
    Vec aff(E), sel(E);
    for (int64_t e = 0; e < E; ++e) {
      aff[e] = 1 / (1 + std::exp(-logits[e]));
      sel[e] = aff[e] + bias[e];
    }
    // Groups ranked by the sum of their two best biased scores; experts outside the kept groups drop.
    std::vector<std::pair<double, int64_t>> groups;
    for (int64_t g = 0; g < m.n_group; ++g) {
      Vec s(sel.begin() + g * per, sel.begin() + (g + 1) * per);
      std::sort(s.rbegin(), s.rend());
      groups.push_back({-(s[0] + s[1]), g});
    }
    std::sort(groups.begin(), groups.end());
    std::vector<std::pair<double, int64_t>> cand;
    for (int64_t i = 0; i < m.topk_group; ++i)
      for (int64_t e = groups[i].second * per; e < (groups[i].second + 1) * per; ++e) cand.push_back({-sel[e], e});
    std::sort(cand.begin(), cand.end());
    double total = 0;
    for (int64_t i = 0; i < m.experts_per_tok; ++i) total += aff[cand[i].second];
    Vec y = mlp(p + "mlp.shared_experts.", x);
    for (int64_t i = 0; i < m.experts_per_tok; ++i) {
      const int64_t e = cand[i].second;
      const Vec ye = mlp(p + "mlp.experts." + std::to_string(e) + ".", x);
      for (size_t j = 0; j < y.size(); ++j) y[j] += aff[e] / total * m.routed_scaling * ye[j];
    }
    return y;
  }

  CheckpointReader ck_;
  ModelConfig cfg_;
  Vec freqs_, norm_;
  double scale_ = 1;
  Mat embed_, head_;
  std::map<std::string, Mat> mats_;
  std::vector<Cache> caches_;
  int64_t t_ = 0;
};

}  // namespace ref
}  // namespace

TEST(DeepSeekV32, MatchesDoublePrecisionReference) {
  const std::string dir = synth_dir("v32-two-layer", v32_two_layer_config());
  auto engine = Engine::load(dir);
  const int64_t n = 40;  // past index_topk (16), so the reference's own indexer chooses too
  const auto toks = tokens(n, 12);
  std::vector<float> all;
  engine->new_session({AttentionMode::kNative, KvFormat::kBf16})->prefill(toks, &all);
  ref::DeepSeekV32Model model(dir);
  double worst = 0;
  for (int64_t t = 0; t < n; ++t) {
    const ref::Vec want = model.step(toks[t]);
    double scale = 0, diff = 0;
    for (int64_t v = 0; v < kVocab; ++v) {
      scale = std::max(scale, std::fabs(want[v]));
      diff = std::max(diff, std::fabs(want[v] - all[t * kVocab + v]));
    }
    worst = std::max(worst, diff / (1 + scale));
    ASSERT_LT(diff, 5e-4 * (1 + scale)) << "position " << t;  // seen: ~1e-5; a wrong convention: > 1e-2
  }
  RecordProperty("max_relative_error", std::to_string(worst));
}

