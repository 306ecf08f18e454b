// Llama-style dense GQA forward pass: pre-norm RMSNorm blocks, q/k/v/o projections (Qwen2 adds
// q/k/v biases), half-split RoPE (Llama's rotate_half convention: pairs (i, i + head_dim/2)),
// causal softmax attention over every previous token with n_heads / n_kv_heads query heads per
// KV head, SwiGLU MLP, final norm and LM head (the embedding when tie_word_embeddings).
//
// Structure as deepseek_v4.cpp: batched projections per chunk, RoPE and cache writes token by
// token, then flash-style attention of the whole chunk. K and V are cached per layer as KvRows (BF16, or E4M3 with unit scale for fp8, as
// vLLM's uncalibrated fp8 KV cache), and attention reads the stored rows back, so the storage
// format changes the numerics exactly as it would in deployment.
//
// RoPE scaling: "llama3" frequency scaling (Llama 3.1+) and "linear" are implemented; configs
// without rope_scaling use plain theta. Other types (dynamic NTK, YaRN for Qwen2) are refused at
// load rather than silently ignored. Mistral's sliding_window is not applied (every token attends).
#include "engine/models/dense_gqa.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include <fmt/format.h>

#include "common/errors.h"
#include "engine/core/thread_pool.h"
#include "engine/kernels/cpu/attention.h"
#include "engine/kernels/cpu/ops.h"
#include "engine/kv/kv_rows.h"
#include "engine/models/forward_util.h"

namespace v4b {

namespace {

struct Layer {
  std::vector<float> attn_norm, ffn_norm, bq, bk, bv;  // biases empty unless the checkpoint has them
  WeightMatrix wq, wk, wv, wo, gate, up, down;
};

struct Weights {
  std::shared_ptr<const CheckpointReader> keep_mapped;
  ModelConfig m;
  WeightMatrix embed, head;
  std::vector<float> norm;
  std::vector<Layer> layers;
  RopeTable rope;
};

WeightMatrix mat(const WeightStore& ws, const std::string& prefix) {
  return ws.matrix(prefix + ".weight", prefix + ".weight_scale_inv");
}

// Llama 3.1 frequency scaling (HF _compute_llama3_parameters): long wavelengths divided by the
// factor, short ones kept, a smooth blend between.
void apply_llama3_scaling(RopeTable& t, const RopeScaling& rs) {
  const double old_len = static_cast<double>(rs.original_max_position);
  const double low_wavelen = old_len / rs.low_freq_factor, high_wavelen = old_len / rs.high_freq_factor;
  for (double& th : t.theta) {
    const double wavelen = 2 * std::numbers::pi / th;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      th /= rs.factor;
      continue;
    }
    const double smooth = (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    th = (1 - smooth) * th / rs.factor + smooth * th;
  }
}

std::shared_ptr<const Weights> load_weights(const ModelConfig& m, const WeightStore& ws) {
  auto w = std::make_shared<Weights>();
  w->keep_mapped = ws.checkpoint();
  w->m = m;
  w->embed = ws.matrix("model.embed_tokens.weight", "");
  w->head = m.tie_word_embeddings ? w->embed : ws.matrix("lm_head.weight", "");
  w->norm = ws.floats("model.norm.weight");
  for (int64_t i = 0; i < m.n_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    Layer l;
    l.attn_norm = ws.floats(p + "input_layernorm.weight");
    l.ffn_norm = ws.floats(p + "post_attention_layernorm.weight");
    l.wq = mat(ws, p + "self_attn.q_proj");
    l.wk = mat(ws, p + "self_attn.k_proj");
    l.wv = mat(ws, p + "self_attn.v_proj");
    l.wo = mat(ws, p + "self_attn.o_proj");
    if (ws.has(p + "self_attn.q_proj.bias")) {
      l.bq = ws.floats(p + "self_attn.q_proj.bias");
      l.bk = ws.floats(p + "self_attn.k_proj.bias");
      l.bv = ws.floats(p + "self_attn.v_proj.bias");
    }
    l.gate = mat(ws, p + "mlp.gate_proj");
    l.up = mat(ws, p + "mlp.up_proj");
    l.down = mat(ws, p + "mlp.down_proj");
    w->layers.push_back(std::move(l));
  }
  const RopeScaling& rs = m.rope_scaling;
  w->rope = make_rope_table(m.head_dim, m.rope_theta);
  if (rs.type == "llama3") {
    apply_llama3_scaling(w->rope, rs);
  } else if (rs.type == "linear") {
    for (double& th : w->rope.theta) th /= rs.factor;
  }
  return w;
}

struct LayerCache {
  KvRows k, v;  // [n_kv_heads * head_dim] per token each
};

struct State : Session::Snapshot {
  int64_t pos = 0;
  std::vector<LayerCache> layers;
  std::vector<float> logits;
};

void add_bias(float* y, const std::vector<float>& b, int64_t T) {
  if (b.empty()) return;
  const int64_t n = static_cast<int64_t>(b.size());
  for (int64_t i = 0; i < T; ++i)
    for (int64_t k = 0; k < n; ++k) y[i * n + k] += b[k];
}

class GqaSession;
using GqaSegment = Segment<GqaSession>;

class GqaSession final : public ModelSession<Weights, State, GqaSession> {
 public:
  GqaSession(std::shared_ptr<const Weights> w, SessionOptions o, ThreadPool* pool, CpuIsa isa)
      : ModelSession(std::move(w), o, pool, isa) {
    if (o_.attention == AttentionMode::kWindow)
      throw UsageError("attention mode 'window' exists only for DeepSeek-V4; dense_gqa supports native and dense (the same here)");
    reset();
  }

  // One forward pass over the segments' sessions (tokens checked; all_logits with one segment only):
  // the matmuls run over every row at once, RoPE, cache writes and attention per session.
  static void forward(std::span<const GqaSegment> segs, std::vector<float>* all_logits);
  KvBytes kv_bytes() const override;
  void reset() override;

 private:
  // This session's T rows of k and v [T][kv_dims]: RoPE and cache writes; and causal attention of
  // its queries, rows [q0, T) (q0 = 0, or T - 1 where only the last row's output is wanted), q
  // [T - q0][H*hd], into att [T - q0][H*hd].
  void attend_rows(size_t layer, float* q, float* k, const float* v, int64_t T, int64_t q0, float* att);
};

void GqaSession::reset() {
  s_ = State{};
  const int64_t kv_dims = m().n_kv_heads * m().head_dim;
  for (size_t l = 0; l < w_->layers.size(); ++l) {
    LayerCache c;
    c.k = KvRows({RowCodec::kPlain, o_.kv_format, kv_dims, 0});
    c.v = KvRows({RowCodec::kPlain, o_.kv_format, kv_dims, 0});
    s_.layers.push_back(std::move(c));
  }
}

KvBytes GqaSession::kv_bytes() const {
  KvBytes b;
  for (const LayerCache& c : s_.layers) b[KvKind::kGqaKv] += c.k.bytes() + c.v.bytes();
  return b;
}

void GqaSession::attend_rows(size_t layer, float* q, float* k, const float* v, int64_t T, int64_t q0, float* att) {
  const ModelConfig& M = m();
  const int64_t H = M.n_heads, KV = M.n_kv_heads, hd = M.head_dim, kv_dims = KV * hd, group = H / KV;
  LayerCache& c = s_.layers[layer];

  // RoPE and cache writes token by token; then every query attends to its causal prefix of the
  // rows as stored, flash-style: key blocks decoded once for the chunk, each (KV group, block of
  // queries) folding them into its own online softmax, in parallel.
  const int64_t t0 = s_.pos, Tq = T - q0, tq = t0 + q0;  // queries, and the first one's position
  for (int64_t i = 0; i < T; ++i) {
    float* kt = k + i * kv_dims;
    if (i >= q0) rope_half(ctx_, q + (i - q0) * H * hd, H, hd, 0, w_->rope, t0 + i);
    rope_half(ctx_, kt, KV, hd, 0, w_->rope, t0 + i);
    c.k.append(kt);
    c.v.append(v + i * kv_dims);
  }
  constexpr int64_t kQueryBlock = 32, kKeyBlock = 256;
  const int64_t qblocks = (Tq + kQueryBlock - 1) / kQueryBlock, items = KV * qblocks;
  // Per item: its queries' heads of the group as contiguous rows (query-major), and their state.
  std::vector<std::vector<float>> qg(items);
  std::vector<OnlineAttention> st(items);
  for (int64_t it = 0; it < items; ++it) {
    const int64_t g = it % KV, i0 = it / KV * kQueryBlock, nq = std::min(kQueryBlock, Tq - i0);
    qg[it].resize(nq * group * hd);
    for (int64_t i = 0; i < nq; ++i)
      std::copy_n(q + ((i0 + i) * H + g * group) * hd, group * hd, qg[it].data() + i * group * hd);
    st[it].reset(nq * group, hd);
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  ThreadPool& pool = ctx_.pool ? *ctx_.pool : default_pool();
  std::vector<float> kb(KV * kKeyBlock * hd), vb(kKeyBlock * kv_dims);
  for (int64_t p0 = 0; p0 < t0 + T; p0 += kKeyBlock) {
    const int64_t n = std::min(kKeyBlock, t0 + T - p0);
    // The block's rows decoded over the pool (a decode step at depth is mostly this), the keys
    // regrouped by KV head so each group's rows are contiguous.
    pool.parallel_for(n, 32, [&](int64_t j0, int64_t j1) {
      std::vector<float> row(kv_dims);
      for (int64_t j = j0; j < j1; ++j) {
        c.k.get(p0 + j, row.data());
        for (int64_t g = 0; g < KV; ++g) std::copy_n(row.data() + g * hd, hd, kb.data() + (g * n + j) * hd);
        c.v.get(p0 + j, vb.data() + j * kv_dims);
      }
    });
    pool.parallel_for(items, 1, [&](int64_t b, int64_t e) {
      std::vector<int64_t> hi;
      for (int64_t it = b; it < e; ++it) {
        const int64_t g = it % KV, i0 = it / KV * kQueryBlock, nq = std::min(kQueryBlock, Tq - i0);
        if (p0 >= tq + i0 + nq) continue;  // entirely in these queries' future
        hi.resize(nq * group);
        for (int64_t r = 0; r < nq * group; ++r) hi[r] = tq + i0 + r / group + 1 - p0;  // causal
        st[it].add(ctx_.isa, qg[it].data(), hd, hd, kb.data() + g * n * hd, vb.data() + g * hd, kv_dims, n, scale, nullptr,
                   hi.data());
      }
    });
  }
  std::vector<float> og;
  for (int64_t it = 0; it < items; ++it) {
    const int64_t g = it % KV, i0 = it / KV * kQueryBlock, nq = std::min(kQueryBlock, Tq - i0);
    og.resize(nq * group * hd);
    st[it].finish(nullptr, og.data(), hd);
    for (int64_t i = 0; i < nq; ++i)
      std::copy_n(og.data() + i * group * hd, group * hd, att + ((i0 + i) * H + g * group) * hd);
  }
  for (int64_t i = 0; i < Tq; ++i) {
    const int64_t n = tq + i + 1;
    counters_.add(FlopCategory::kAttentionCore, 4 * H * hd * n, n * 2 * c.k.format().row_bytes() + 2 * 4 * H * hd);
  }
}

void GqaSession::forward(std::span<const GqaSegment> segs, std::vector<float>* all_logits) {
  const PassCounts<GqaSession> counts(segs);
  PassRows<GqaSession, Weights> pass(segs, *segs.front().session->w_, counts.ctx());
  const KernelContext& ctx = pass.ctx_;
  const Weights& w = pass.w_;
  const ModelConfig& M = pass.m_;
  const int64_t d = M.hidden, F = M.intermediate;
  int64_t T = pass.T_;  // rows still in the pass
  const int64_t HD = M.n_heads * M.head_dim, kv_dims = M.n_kv_heads * M.head_dim;
  const float eps = static_cast<float>(M.rms_eps);

  std::vector<float> h(T * d), xn(T * d), y(T * d), g(T * F), u(T * F);
  std::vector<float> q(T * HD), k(T * kv_dims), v(T * kv_dims), att(T * HD);
  for (int64_t i = 0; i < T; ++i) embedding_row(w.embed, pass.tokens_[i], h.data() + i * d);
  // Logits come from every row with all_logits (one segment), else from each segment's last row;
  // the last layer's queries and all after them run on those rows alone.
  const std::vector<int64_t> out_rows = logit_rows(segs, all_logits != nullptr);
  const int64_t rows_out = static_cast<int64_t>(out_rows.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const Layer& L = w.layers[l];
    const bool last_rows_only = pass.last_rows_only(l, rows_out);
    rms_norm(ctx, h.data(), L.attn_norm.data(), eps, d, T, xn.data());
    matmul(ctx, FlopCategory::kWeightGemm, xn.data(), T, L.wk, k.data());
    matmul(ctx, FlopCategory::kWeightGemm, xn.data(), T, L.wv, v.data());
    add_bias(k.data(), L.bk, T);
    add_bias(v.data(), L.bv, T);
    const LayerQueries<GqaSession> queries(segs, xn.data(), d, last_rows_only);
    matmul(ctx, FlopCategory::kWeightGemm, queries.x(), queries.count(), L.wq, q.data());
    add_bias(q.data(), L.bq, queries.count());
    for (size_t s = 0; s < segs.size(); ++s) {
      const GqaSegment& sg = segs[s];
      sg.session->attend_rows(l, q.data() + queries.row(s) * HD, k.data() + sg.row0 * kv_dims, v.data() + sg.row0 * kv_dims, sg.rows(),
                              queries.first(s), att.data() + queries.row(s) * HD);
    }
    if (last_rows_only) {
      keep_rows(h.data(), d, out_rows);
      pass.keep_token_rows(out_rows);
      T = rows_out;
    }
    matmul(ctx, FlopCategory::kWeightGemm, att.data(), T, L.wo, y.data());
    for (int64_t i = 0; i < T * d; ++i) h[i] += y[i];
    rms_norm(ctx, h.data(), L.ffn_norm.data(), eps, d, T, xn.data());
    matmul(ctx, FlopCategory::kWeightGemm, xn.data(), T, L.gate, g.data());
    matmul(ctx, FlopCategory::kWeightGemm, xn.data(), T, L.up, u.data());
    swiglu(ctx, g.data(), u.data(), T * F, 0.0f, g.data());
    matmul(ctx, FlopCategory::kWeightGemm, g.data(), T, L.down, y.data());
    for (int64_t i = 0; i < T * d; ++i) h[i] += y[i];
  }

  // Final norm and logits: h holds the logit rows first, in order.
  rms_norm(ctx, h.data(), w.norm.data(), eps, d, rows_out, xn.data());
  pass_logits(ctx, w.head, xn.data(), segs, all_logits);
}

}  // namespace

std::unique_ptr<Engine> make_dense_gqa_engine(const ModelConfig& m, const WeightStore& weights, const EngineOptions& opts) {
  if (m.family != Family::kDenseGqa) throw UsageError(fmt::format("{} is not a dense GQA model", family_name(m.family)));
  if (m.head_dim % 2) throw UsageError(fmt::format("head_dim must be even for RoPE, got {}", m.head_dim));
  const RopeScaling& rs = m.rope_scaling;
  if (!rs.type.empty() && rs.type != "default" && rs.type != "llama3" && rs.type != "linear")
    throw UsageError(fmt::format("rope_scaling type '{}' is not supported for dense GQA models (llama3 and linear are)", rs.type));
  if (rs.type == "llama3" && (rs.original_max_position <= 0 || rs.high_freq_factor <= rs.low_freq_factor))
    throw UsageError("llama3 rope_scaling needs original_max_position_embeddings and high_freq_factor > low_freq_factor");
  return std::make_unique<ModelEngine<GqaSession, Weights>>(load_weights(m, weights), opts);
}

}  // namespace v4b
