#include "engine/synth/probe.h"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "engine/core/dtypes.h"
#include "common/hashing.h"
#include "common/errors.h"

namespace v4b {

namespace {

constexpr int64_t kCode = 64;  // code dims per token
// Residual slots: A current token, B/C/D the three before it, E the copied token, then a constant.
constexpr int64_t kSlotA = 0, kSlotB = 64, kSlotC = 128, kSlotD = 192, kSlotE = 256, kOne = 320;
constexpr int kPrevHeads = 3;         // layer 0: offsets 1, 2, 3
constexpr double kPrevPerPair = 40;   // layer 0: score per RoPE pair at the target offset (nats)
constexpr double kMatchPerCode = 26;  // layer 1: score per matching token of the 3-gram (nats)
constexpr float kNoSink = -1e4f;      // attention sinks off: every head attends somewhere
// GQA: RoPE over all 384 dims in rotate-half pairs (i, i + 192). Pairs [0, 32) carry position for
// the previous-token heads (margin >= 1.67 per unit up to 1M); pairs [96, 192) turn by at most
// 1e-7 rad per token at base 1e14 and carry content.
constexpr int64_t kGqaHeadDim = 384, kGqaHalf = 192, kGqaPosPairs = 32, kGqaContentPair = 96;

// The float values of every BF16 / F32 tensor, zero until set.
class Values {
 public:
  explicit Values(const std::vector<TensorSpec>& specs) {
    for (const auto& s : specs) shapes_[s.name] = s.shape;
  }
  std::vector<float>& operator[](const std::string& name) {
    auto& v = values_[name];
    if (v.empty()) v.assign(numel(shape(name)), 0.0f);
    return v;
  }
  // Element [r][c] of a 2-D tensor.
  float& at(const std::string& name, int64_t r, int64_t c) { return (*this)[name][r * shape(name).at(1) + c]; }
  void fill(const std::string& name, float v) {
    auto& t = (*this)[name];
    std::fill(t.begin(), t.end(), v);
  }
  const std::vector<int64_t>& shape(const std::string& name) const {
    auto it = shapes_.find(name);
    if (it == shapes_.end()) throw std::logic_error("probe: no tensor " + name);
    return it->second;
  }

 private:
  std::map<std::string, std::vector<int64_t>> shapes_;
  std::map<std::string, std::vector<float>> values_;
};

float code(int64_t token, int64_t j) { return (probe_code_bits(token) >> j) & 1 ? 1.0f : -1.0f; }

// RMS of a vector with `nonzero` equal-magnitude entries out of `n`, after rms_norm: each entry's size.
double normed(int64_t n, int64_t nonzero) { return std::sqrt(static_cast<double>(n) / nonzero); }

// Throws UsageError listing every way `m` differs from the probe layout.
class LayoutCheck {
 public:
  void need(bool ok, const std::string& what) {
    if (!ok) bad_ += (bad_.empty() ? "" : "; ") + what;
  }
  void done() const {
    if (!bad_.empty()) throw UsageError("the induction probe needs " + bad_);
  }

 private:
  std::string bad_;
};

void check_v4_layout(const ModelConfig& m) {
  LayoutCheck c;
  c.need(m.hidden == 384, "hidden_size 384");
  c.need(m.head_dim == 320 && m.qk_rope_dim == 64, "head_dim 320 with qk_rope_head_dim 64");
  c.need(m.n_heads == kPrevHeads && m.o_groups == 1 && m.o_lora_rank >= kPrevHeads * kCode, "3 heads, o_groups 1, o_lora_rank >= 192");
  c.need(m.q_lora_rank >= 3 * kCode, "q_lora_rank >= 192");
  c.need(m.n_layers == 2 && m.layers[0].attn == AttnKind::kSwa && m.layers[1].attn == AttnKind::kCsa, "layers [window, CSA]");
  c.need(m.dense_weights == WeightFormat::kBf16, "BF16 weights (no quantization_config)");
  c.need(m.index_head_dim == 128, "index_head_dim 128");
  c.done();
}

void check_gqa_layout(const ModelConfig& m) {
  LayoutCheck c;
  c.need(m.hidden == 384, "hidden_size 384");
  c.need(m.head_dim == kGqaHeadDim && m.n_heads == kPrevHeads && m.n_kv_heads == 1, "head_dim 384, 3 heads, 1 KV head");
  c.need(m.n_layers == 2, "2 layers");
  c.need(m.rope_theta >= 1e14 && m.rope_scaling.type.empty(), "rope_theta >= 1e14 without rope_scaling");
  c.need(m.dense_weights == WeightFormat::kBf16 && !m.tie_word_embeddings, "BF16 weights, untied head");
  c.done();
}

// Layer 0: heads 0-2 attend to offsets 1-3 by RoPE phase alone and copy slot A there into B, C, D.
void previous_token_layer(Values& v, const ModelConfig& m, const std::string& p) {
  const int64_t D = m.head_dim, R = m.qk_rope_dim, N = D - R, pairs = R / 2;
  // KV row: c(token) in dims [0, 64), 1 in the real part of every RoPE pair.
  for (int64_t j = 0; j < kCode; ++j) v.at(p + "attn.wkv.weight", j, kSlotA + j) = 1;
  for (int64_t i = 0; i < pairs; ++i) v.at(p + "attn.wkv.weight", N + 2 * i, kOne) = 1;
  const double kv_entry = normed(D, kCode + pairs);  // every nonzero entry after kv rms_norm
  const double q_pair = normed(D, pairs);            // per-head q norm: the amplitude of each pair
  // Score at the target offset, per pair: q_pair * k_pair / sqrt(D) = kPrevPerPair.
  const double k_pair = kPrevPerPair * std::sqrt(double(D)) / q_pair;
  auto& kv_norm = v[p + "attn.kv_norm.weight"];
  for (int64_t j = 0; j < kCode; ++j) kv_norm[j] = 1;
  for (int64_t j = N; j < D; ++j) kv_norm[j] = static_cast<float>(k_pair / kv_entry);

  // Query: constant (cq dim 0 from the constant residual dim), each pair pre-rotated by -(h+1)*theta_i
  // so that after RoPE q_t . k_s ~ sum_i cos((t - s - h - 1) * theta_i).
  v.at(p + "attn.wq_a.weight", 0, kOne) = 1;
  for (int64_t h = 0; h < kPrevHeads; ++h)
    for (int64_t i = 0; i < pairs; ++i) {
      const double a = (h + 1) * std::pow(m.rope_theta, -2.0 * i / R);
      v.at(p + "attn.wq_b.weight", h * D + N + 2 * i, 0) = static_cast<float>(std::cos(a));
      v.at(p + "attn.wq_b.weight", h * D + N + 2 * i + 1, 0) = static_cast<float>(-std::sin(a));
    }
  // Output: head h's slot A -> low-rank dims [64h, 64h+64) -> residual slot B + 64h at unit size.
  for (int64_t h = 0; h < kPrevHeads; ++h)
    for (int64_t j = 0; j < kCode; ++j) {
      v.at(p + "attn.wo_a.weight", h * kCode + j, h * D + j) = 1;
      v.at(p + "attn.wo_b.weight", kSlotB + h * kCode + j, h * kCode + j) = static_cast<float>(1 / kv_entry);
    }
}

// Layer 1: key [c(s-1), c(s-2), c(s-3)], value c(s), query [c(t), c(t-1), c(t-2)]; head 0 writes the
// value into slot E. The compressor and indexer transfer the same circuit to pooled rows.
void induction_layer(Values& v, const ModelConfig& m, const std::string& p) {
  const int64_t D = m.head_dim, key_dims = 3 * kCode;
  for (int64_t j = 0; j < 4 * kCode; ++j) v.at(p + "attn.wkv.weight", j, kSlotA + j) = 1;  // slots A-D
  const double kv_entry = normed(D, 4 * kCode), q_entry = normed(D, key_dims);
  const double key_scale = kMatchPerCode * std::sqrt(double(D)) / (kCode * q_entry * kv_entry);
  auto& kv_norm = v[p + "attn.kv_norm.weight"];
  for (int64_t j = 0; j < kCode; ++j) kv_norm[j] = 1;
  for (int64_t j = kCode; j < 4 * kCode; ++j) kv_norm[j] = static_cast<float>(key_scale);

  for (int64_t j = 0; j < key_dims; ++j) v.at(p + "attn.wq_a.weight", j, kSlotA + j) = 1;  // cq = [A, B, C]
  for (int64_t j = 0; j < key_dims; ++j) v.at(p + "attn.wq_b.weight", kSlotB + j, j) = 1;  // head 0: A->B, B->C, C->D
  for (int64_t j = 0; j < kCode; ++j) {
    v.at(p + "attn.wo_a.weight", j, j) = 1;
    v.at(p + "attn.wo_b.weight", kSlotE + j, j) = static_cast<float>(1 / kv_entry);
  }

  // Compressor: both lanes are the KV projection, zero gates (mean pooling), the KV norm.
  const std::string c = p + "attn.compressor.";
  for (int64_t lane = 0; lane < 2; ++lane)
    for (int64_t j = 0; j < 4 * kCode; ++j) v.at(c + "wkv.weight", lane * D + j, kSlotA + j) = 1;
  v[c + "norm.weight"] = kv_norm;

  // Indexer: key = c(s-1)+c(s-2)+c(s-3) pooled, query = c(t)+c(t-1)+c(t-2), one head of weight 1.
  const std::string ic = p + "attn.indexer.compressor.";
  const int64_t DI = m.index_head_dim;
  for (int64_t lane = 0; lane < 2; ++lane)
    for (int64_t s = 0; s < 3; ++s)
      for (int64_t j = 0; j < kCode; ++j) v.at(ic + "wkv.weight", lane * DI + j, kSlotB + s * kCode + j) = 1;
  v.fill(ic + "norm.weight", 1);
  for (int64_t s = 0; s < 3; ++s)
    for (int64_t j = 0; j < kCode; ++j) v.at(p + "attn.indexer.wq_b.weight", j, s * kCode + j) = 1;
  v.at(p + "attn.indexer.weights_proj.weight", 0, kOne) = 1;
}

// The same circuit in a Llama-style model: no q/k norms, so score scales come from the projections;
// separate K and V, so the value is its own projection. The residual's nonzero entries all have one
// size after rms_norm (65 of 384 in layer 0, 257 in layer 1), which the weights divide out.
void gqa_layers(Values& v, const ModelConfig& m) {
  const int64_t Dh = kGqaHeadDim;
  const double x0 = normed(m.hidden, kCode + 1), x1 = normed(m.hidden, 4 * kCode + 1), root = std::sqrt(double(Dh));
  // Layer 0: q and k unit-free amplitudes with a * b / sqrt(Dh) = kPrevPerPair in each position pair.
  const std::string p0 = "model.layers.0.self_attn.";
  const double amp = std::sqrt(kPrevPerPair * root);
  for (int64_t i = 0; i < kGqaPosPairs; ++i) {
    v.at(p0 + "k_proj.weight", i, kOne) = static_cast<float>(amp / x0);
    for (int64_t h = 0; h < kPrevHeads; ++h) {
      const double a = (h + 1) * std::pow(m.rope_theta, -2.0 * i / Dh);
      v.at(p0 + "q_proj.weight", h * Dh + i, kOne) = static_cast<float>(amp * std::cos(a) / x0);
      v.at(p0 + "q_proj.weight", h * Dh + kGqaHalf + i, kOne) = static_cast<float>(-amp * std::sin(a) / x0);
    }
  }
  for (int64_t j = 0; j < kCode; ++j) {
    v.at(p0 + "v_proj.weight", j, kSlotA + j) = static_cast<float>(1 / x0);
    for (int64_t h = 0; h < kPrevHeads; ++h) v.at(p0 + "o_proj.weight", kSlotB + h * kCode + j, h * Dh + j) = 1;
  }
  // Layer 1: content in the slow pairs; content dim j (< 192) is the real part of pair 96 + j for
  // j < 96, else the imaginary part of pair j.
  const std::string p1 = "model.layers.1.self_attn.";
  const double alpha = std::sqrt(kMatchPerCode * root / kCode) / x1;
  for (int64_t j = 0; j < 3 * kCode; ++j) {
    const int64_t dim = j < kGqaContentPair ? kGqaContentPair + j : kGqaHalf + j;
    v.at(p1 + "q_proj.weight", dim, kSlotA + j) = static_cast<float>(alpha);
    v.at(p1 + "k_proj.weight", dim, kSlotB + j) = static_cast<float>(alpha);
  }
  for (int64_t j = 0; j < kCode; ++j) {
    v.at(p1 + "v_proj.weight", j, kSlotA + j) = static_cast<float>(1 / x1);
    v.at(p1 + "o_proj.weight", kSlotE + j, j) = 1;
  }
}

}  // namespace

bool is_probe_config(const nlohmann::json& config) {
  return config.is_object() && config.value(kSynthWeightsKey, std::string()) == kProbeWeights;
}

uint64_t probe_code_bits(int64_t token) {
  // SplitMix64's first output for the token: distinct tokens get independent-looking codes.
  return SplitMix64{static_cast<uint64_t>(token)}.next();
}

std::map<std::string, std::vector<uint8_t>> probe_tensor_bytes(const ModelConfig& m, const std::vector<TensorSpec>& specs) {
  if (m.is_v4()) check_v4_layout(m);
  else if (m.family == Family::kDenseGqa) check_gqa_layout(m);
  else throw UsageError("the induction probe exists for deepseek_v4 and Llama-style models only");
  const bool v4 = m.is_v4();
  const std::string embed = v4 ? "embed.weight" : "model.embed_tokens.weight", head = v4 ? "head.weight" : "lm_head.weight";
  Values v(specs);
  for (int64_t t = 0; t < m.vocab; ++t) {
    for (int64_t j = 0; j < kCode; ++j) {
      v.at(embed, t, kSlotA + j) = code(t, j);
      v.at(head, t, kSlotE + j) = code(t, j);
    }
    v.at(embed, t, kOne) = 1;
  }
  auto& norm = v[v4 ? "norm.weight" : "model.norm.weight"];
  for (int64_t j = 0; j < kCode; ++j) norm[kSlotE + j] = 1;

  if (v4) {
    v.fill("hc_head_scale", 1);
    for (int64_t l = 0; l < m.n_layers; ++l) {
      const std::string p = fmt::format("layers.{}.", l);
      v.fill(p + "attn_norm.weight", 1);
      v.fill(p + "ffn_norm.weight", 1);
      v.fill(p + "attn.q_norm.weight", 1);
      v.fill(p + "attn.attn_sink", kNoSink);
      for (const char* site : {"attn", "ffn"}) v.fill(fmt::format("{}hc_{}_scale", p, site), 1);
      if (l == 0) previous_token_layer(v, m, p);
      else induction_layer(v, m, p);
    }
  } else {
    for (int64_t l = 0; l < m.n_layers; ++l) {
      const std::string p = fmt::format("model.layers.{}.", l);
      v.fill(p + "input_layernorm.weight", 1);
      v.fill(p + "post_attention_layernorm.weight", 1);
    }
    gqa_layers(v, m);
  }

  std::map<std::string, std::vector<uint8_t>> out;
  for (const TensorSpec& s : specs) {
    std::vector<uint8_t>& bytes = out[s.name];
    const int64_t n = numel(s.shape);
    if (s.dtype == DType::I64) {  // tid2eid: token t to experts t, t+1, ... (their outputs are zero)
      const int64_t k = s.shape.at(1);
      std::vector<int64_t> ids(n);
      for (int64_t i = 0; i < n; ++i) ids[i] = (i / k + i % k) % m.n_routed_experts;
      bytes.resize(n * 8);
      std::memcpy(bytes.data(), ids.data(), bytes.size());
      continue;
    }
    const std::vector<float>& f = v[s.name];
    bytes.resize(n * dtype_size(s.dtype));
    for (int64_t i = 0; i < n; ++i) {
      if (s.dtype == DType::F32) {
        std::memcpy(bytes.data() + 4 * i, &f[i], 4);
      } else if (s.dtype == DType::BF16) {
        const uint16_t h = float_to_bf16(f[i]).bits;
        std::memcpy(bytes.data() + 2 * i, &h, 2);
      } else {
        throw UsageError(fmt::format("the induction probe stores no {} tensors ({})", dtype_name(s.dtype), s.name));
      }
    }
  }
  return out;
}

}  // namespace v4b
