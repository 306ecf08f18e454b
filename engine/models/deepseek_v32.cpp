// DeepSeek-V3.2 / V3 forward pass (spec §2.10), weights in their stored formats (FP8 with F32 block
// scales, or BF16) dequantised inside the matmul kernels. Two arithmetics (SessionOptions::numerics):
//  * fp32 (the default, and the only one for V3): FP32 activations between kernels (optionally
//    BF16 GEMM operands), FP32 index scores; the reference path of the FP64 tests;
//  * official (V3.2 only): what DeepSeek's V3.2 inference code computes, in the conventions of
//    spec §7.7 (see "official numerics" below).
//
// Attention always runs in the absorbed "MQA mode" of the official decode path: the query's nope
// part is folded through W_UK into the latent space, scores are taken against the cached
// [latent | rope key] rows, and the latent-space output goes through W_UV. Prefill uses the same
// form (rather than materialising per-head K/V), so prefill, chunked prefill and decode build the
// same cache and differ only by GEMM-vs-GEMV rounding.
//
// As in deepseek_v4.cpp, a chunk runs every position-independent projection as one batched matmul,
// RoPE and cache writes token by token, then the indexer and attention for all its queries at once.
//
// Choices where the sources leave room (kept here, in one place):
//  * MLA RoPE is the interleaved (complex-pair) form of DeepSeek's inference/model.py
//    (view_as_complex over adjacent pairs); HF's modeling code de-interleaves q/k and then uses
//    rotate_half, which is the same rotation. The indexer uses the half-split form (pairs (i, i+32)
//    of its first 64 dims), as the corrected official V3.2 code does.
//  * YaRN: frequencies are blended whenever rope_scaling is yarn with factor > 1 (HF semantics;
//    the official code does so whenever max_seq_len > original_seq_len, true by default). The
//    softmax scale is qk_head_dim^-0.5 · mscale², mscale = 0.1·mscale_all_dim·ln(factor) + 1
//    (0.13523 for the released configs); HF's cos/sin factor
//    yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all_dim), 1 for every released
//    config, is applied to the MLA rope dims of q and k.
//  * The cache holds the post-norm latent and the rotated rope key as stored rows: BF16 rows are the
//    values rounded to BF16, FP8 rows FlashMLA's 656-byte layout (so the storage format changes the
//    numerics, as it does in deployment). Index keys likewise (BF16, or E4M3 + one FP32 scale).
//  * fp32: indexer queries and keys stay FP32 (BF16 / FP8 cache rows as stored); index scores are
//    FP32; ties go to the lower position. Selected tokens are attended in position order.
//  * Routed expert outputs are weighted after w2, as DeepSeek's MoE does, and summed in double in
//    ascending expert order; the MTP block is not run.
//
// Official numerics (V3.2's inference code: BF16 tensors between layers, FP8 GEMMs):
//  * BF16 where that code holds a BF16 tensor: the embedding; every RMSNorm output (attn_norm,
//    ffn_norm, q_norm, kv_norm, final norm; computed in FP32); every linear output of an FP8 / BF16
//    weight (MatmulJob::bf16_out); the RoPE'd query and key parts; the indexer's LayerNorm, RoPE
//    and Hadamard outputs; the attention's latent output and its W_UV product; the MoE / MLP
//    output; and the residual stream after each add (h = bf16(h + y)).
//  * act_quant (FP8 E4M3 blocks of 128, UE8M0 scales; MatmulJob::act_quant) in front of every
//    FP8-weight GEMM: wq_a, wq_b, wkv_a, wo, the indexer's wq_b and wk, dense / expert / shared
//    w1, w3 and w2. The absorbed W_UK and W_UV products are BF16 einsums on the dequantised kv_b
//    rounded to BF16 (weight_dequant's BF16 result): kept as BF16 copies (uk16 / uv16), BF16
//    operands, FP32 sums, BF16 results, no act_quant.
//  * FP32: the router logits and routing weights, the indexer head weights (weights_proj's
//    product, scaled by 1/(√HI·√DI) in FP32), the head's logits (on the BF16 final norm).
//  * MoE: each expert's BF16 w2 output times its FP32 weight, summed with the shared expert in
//    FP32+ (double here), then cast to BF16. SwiGLU in FP32 on the BF16 g / u, rounded to BF16
//    before w2.
//  * Indexer: queries (per head) and keys quantised through act_qdq (E4M3, one power-of-two scale
//    per 128 values, as the official act_quant with scale_fmt ue8m0); scores
//    Σ_h w_h·ReLU(q_h·k) in FP32 from those values (the official fp8_index kernel's FP32 logits),
//    ties to the lower position. With the BF16 cache the QDQ'd keys are stored exactly; the fp8
//    cache re-encodes them in its own layout (one FP32 scale amax/448 per key), a second rounding
//    the official cache (E4M3 codes + their power-of-two scale) does not have.
//  Approximated: the attention core stays FP32 (scores, softmax, P·V, as FlashMLA's sparse kernel
//  computes them, rather than model.py's BF16 einsums, whose scores are BF16); prefill runs the
//  absorbed MQA form like decode (the official prefill expands K / V per head through wkv_b,
//  which act_quants the latent); the latent cache is BF16 or this engine's fp8 layout, not
//  model.py's simulated FP8 round trip of the latent. Summation orders differ from the GPU kernels.
#include "engine/models/deepseek_v32.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "common/errors.h"
#include "engine/core/qdq.h"
#include "engine/core/thread_pool.h"
#include "engine/kernels/cpu/attention.h"
#include "engine/kernels/cpu/ops.h"
#include "engine/kv/kv_rows.h"
#include "engine/models/forward_util.h"

namespace v4b {

namespace {

struct Layer {
  LayerSpec spec;
  std::vector<float> attn_norm, ffn_norm, q_norm, kv_norm;
  WeightMatrix wq_a, wq_b, wq, wkv_a, wo;  // wq: full-rank query when q_lora_rank is 0
  // kv_b split per head and widened to FP32: W_UKᵀ [c][nope] and W_UV [v][c], so both products
  // are plain y = x·Wᵀ matmuls.
  std::vector<float> uk_t, uv;
  std::vector<WeightMatrix> uk_head, uv_head;
  // The same rounded to BF16 (official numerics: the dequantised wkv_b is a BF16 tensor there).
  std::vector<Bf16> uk16, uv16;
  std::vector<WeightMatrix> uk16_head, uv16_head;
  // DSA lightning indexer (V3.2).
  WeightMatrix idx_wq_b, idx_wk, idx_weights_proj;
  std::vector<float> idx_norm_w, idx_norm_b;
  // FFN: dense (gate / up / down) or MoE.
  WeightMatrix w_gate, w_up, w_down;
  WeightMatrix router;
  std::vector<float> router_bias;
  std::vector<WeightMatrix> e_gate, e_up, e_down;
  WeightMatrix s_gate, s_up, s_down;
};

struct Weights {
  std::shared_ptr<const CheckpointReader> keep_mapped;
  ModelConfig m;
  WeightMatrix embed, head;
  std::vector<float> norm;
  std::vector<Layer> layers;
  RopeTable rope;
  float softmax_scale = 1, rope_mscale = 1;
};

WeightMatrix mat(const WeightStore& ws, const std::string& prefix) {
  return ws.matrix(prefix + ".weight", prefix + ".weight_scale_inv");
}

double yarn_mscale(double factor, double mscale) { return factor > 1 ? 0.1 * mscale * std::log(factor) + 1 : 1.0; }

void load_layer(const ModelConfig& m, const WeightStore& ws, int64_t i, Layer& l) {
  const std::string p = fmt::format("model.layers.{}.", i);
  const std::string a = p + "self_attn.";
  const int64_t H = m.n_heads, NP = m.qk_nope_dim, V = m.v_head_dim, C = m.kv_lora_rank;
  l.spec = m.layers[i];
  l.attn_norm = ws.floats(p + "input_layernorm.weight");
  l.ffn_norm = ws.floats(p + "post_attention_layernorm.weight");
  if (m.q_lora_rank > 0) {
    l.wq_a = mat(ws, a + "q_a_proj");
    l.q_norm = ws.floats(a + "q_a_layernorm.weight");
    l.wq_b = mat(ws, a + "q_b_proj");
  } else {
    l.wq = mat(ws, a + "q_proj");
  }
  l.wkv_a = mat(ws, a + "kv_a_proj_with_mqa");
  l.kv_norm = ws.floats(a + "kv_a_layernorm.weight");
  l.wo = mat(ws, a + "o_proj");

  // kv_b is [H * (nope + v)][c]: per head, the first nope rows are W_UK, the last v rows W_UV.
  const std::vector<float> kv_b = dequantize(mat(ws, a + "kv_b_proj"));
  l.uk_t.resize(H * C * NP);
  l.uv.resize(H * V * C);
  for (int64_t h = 0; h < H; ++h) {
    const float* blk = kv_b.data() + h * (NP + V) * C;
    for (int64_t n = 0; n < NP; ++n)
      for (int64_t c = 0; c < C; ++c) l.uk_t[(h * C + c) * NP + n] = blk[n * C + c];
    std::copy_n(blk + NP * C, V * C, l.uv.begin() + h * V * C);
  }
  l.uk16.resize(l.uk_t.size());
  l.uv16.resize(l.uv.size());
  std::transform(l.uk_t.begin(), l.uk_t.end(), l.uk16.begin(), float_to_bf16);
  std::transform(l.uv.begin(), l.uv.end(), l.uv16.begin(), float_to_bf16);
  for (int64_t h = 0; h < H; ++h) {
    l.uk_head.push_back(f32_matrix(l.uk_t.data() + h * C * NP, C, NP));
    l.uv_head.push_back(f32_matrix(l.uv.data() + h * V * C, V, C));
    l.uk16_head.push_back(bf16_matrix(l.uk16.data() + h * C * NP, C, NP));
    l.uv16_head.push_back(bf16_matrix(l.uv16.data() + h * V * C, V, C));
  }

  if (l.spec.attn == AttnKind::kMlaDsa) {
    l.idx_wq_b = mat(ws, a + "indexer.wq_b");
    l.idx_wk = mat(ws, a + "indexer.wk");
    l.idx_norm_w = ws.floats(a + "indexer.k_norm.weight");
    l.idx_norm_b = ws.floats(a + "indexer.k_norm.bias");
    l.idx_weights_proj = ws.matrix(a + "indexer.weights_proj.weight", "");
  }

  if (!l.spec.moe) {
    l.w_gate = mat(ws, p + "mlp.gate_proj");
    l.w_up = mat(ws, p + "mlp.up_proj");
    l.w_down = mat(ws, p + "mlp.down_proj");
    return;
  }
  l.router = ws.matrix(p + "mlp.gate.weight", "");
  l.router_bias = ws.floats(p + "mlp.gate.e_score_correction_bias");
  for (int64_t e = 0; e < m.n_routed_experts; ++e) {
    const std::string ep = fmt::format("{}mlp.experts.{}.", p, e);
    l.e_gate.push_back(mat(ws, ep + "gate_proj"));
    l.e_up.push_back(mat(ws, ep + "up_proj"));
    l.e_down.push_back(mat(ws, ep + "down_proj"));
  }
  if (m.n_shared_experts > 0) {
    l.s_gate = mat(ws, p + "mlp.shared_experts.gate_proj");
    l.s_up = mat(ws, p + "mlp.shared_experts.up_proj");
    l.s_down = mat(ws, p + "mlp.shared_experts.down_proj");
  }
}

std::shared_ptr<const Weights> load_weights(const ModelConfig& m, const WeightStore& ws) {
  auto w = std::make_shared<Weights>();
  w->keep_mapped = ws.checkpoint();
  w->m = m;
  w->embed = ws.matrix("model.embed_tokens.weight", "");
  w->head = m.tie_word_embeddings ? w->embed : ws.matrix("lm_head.weight", "");
  w->norm = ws.floats("model.norm.weight");
  // Filled in place: the per-head views point into each layer's own buffers.
  w->layers.resize(m.n_layers);
  for (int64_t i = 0; i < m.n_layers; ++i) load_layer(m, ws, i, w->layers[i]);

  const RopeScaling& rs = m.rope_scaling;
  const bool yarn = rs.type == "yarn" && rs.factor > 1;
  const YarnParams yp{rs.factor, rs.original_max_position, rs.beta_fast, rs.beta_slow};
  w->rope = make_rope_table(m.qk_rope_dim, m.rope_theta, yarn ? &yp : nullptr);
  double scale = 1.0 / std::sqrt(static_cast<double>(m.qk_nope_dim + m.qk_rope_dim));
  if (yarn && rs.mscale_all_dim != 0) {
    const double ms = yarn_mscale(rs.factor, rs.mscale_all_dim);
    scale *= ms * ms;
  }
  w->softmax_scale = static_cast<float>(scale);
  w->rope_mscale = yarn ? static_cast<float>(yarn_mscale(rs.factor, rs.mscale) / yarn_mscale(rs.factor, rs.mscale_all_dim)) : 1.0f;
  return w;
}

struct LayerCache {
  KvRows latent;      // [kv_lora latent | rope key] per token
  KvRows index_keys;  // DSA indexer keys per token (native V3.2 only)
};

struct State : Session::Snapshot {
  int64_t pos = 0;
  std::vector<LayerCache> layers;
  std::vector<float> logits;
};

// One layer's attention projections, row-major: the cache side (kv, ik) for every row of a pass,
// the query side (q, qhat, iq, iw) for the rows that query; each session's timeline pass applies
// RoPE (and the indexer's Hadamard) in place to its own rows.
struct AttnProj {
  std::vector<float> q, kv, qhat, iq, ik, iw;
};

class MlaSession;
using MlaSegment = Segment<MlaSession>;

class MlaSession final : public ModelSession<Weights, State, MlaSession> {
 public:
  MlaSession(std::shared_ptr<const Weights> w, SessionOptions o, ThreadPool* pool, CpuIsa isa)
      : ModelSession(std::move(w), o, pool, isa) {
    if (o_.attention == AttentionMode::kWindow)
      throw UsageError(fmt::format("attention mode 'window' exists only for DeepSeek-V4; {} supports native and dense",
                                   family_name(m().family)));
    reset();
  }

  // One forward pass over the segments' sessions (tokens checked; all_logits with one segment only).
  static void forward(std::span<const MlaSegment> segs, std::vector<float>* all_logits);
  KvBytes kv_bytes() const override;
  void reset() override;

 private:
  friend class MlaPass;
  bool indexer_on(const Layer& L) const { return L.spec.attn == AttnKind::kMlaDsa && o_.attention == AttentionMode::kNative; }
  // This session's rows [row0, row0 + T) of a layer's attention: cache writes for all; indexer and
  // attention in the latent space for its queries, rows [q0, T) (q0 = 0, or T - 1 where only the
  // last row's output is wanted), whose projections are rows qrow0.. of p.q, p.qhat, p.iq and p.iw;
  // into olat [T - q0][H][C].
  void attend_rows(const Layer& L, size_t layer, AttnProj& p, int64_t row0, int64_t T, int64_t q0, int64_t qrow0, float* olat);
};

// The row-wise part of a forward pass over every segment's rows at once: embedding, norms,
// projections, FFN / experts and the head; attend_rows runs per session in between.
class MlaPass : PassRows<MlaSession, Weights> {
 public:
  MlaPass(std::span<const MlaSegment> segs, const KernelContext& ctx) : PassRows(segs, *segs.front().session->w_, ctx) {}
  void run(std::vector<float>* all_logits);

 private:
  void attention(const Layer& L, size_t layer, const float* x, float* out, bool last_rows_only);
  void per_head_products(const float* x, int64_t x_stride, int64_t in, int64_t Tq, const std::vector<WeightMatrix>& w, float* y);
  void swiglu_ffn(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down, const float* x, int64_t n, float* y);
  void moe(const Layer& L, const float* x, float* out);
};

void MlaSession::forward(std::span<const MlaSegment> segs, std::vector<float>* all_logits) {
  const PassCounts<MlaSession> counts(segs);
  MlaPass(segs, counts.ctx()).run(all_logits);
}

void MlaSession::reset() {
  s_ = State{};
  for (const Layer& L : w_->layers) {
    LayerCache c;
    c.latent = KvRows({RowCodec::kMlaLatent, o_.kv_format, m().kv_lora_rank + m().qk_rope_dim, m().qk_rope_dim});
    if (indexer_on(L)) c.index_keys = KvRows({RowCodec::kFp8Key, o_.kv_format, m().index_head_dim, 0});
    s_.layers.push_back(std::move(c));
  }
}

KvBytes MlaSession::kv_bytes() const {
  KvBytes b;
  for (const LayerCache& c : s_.layers) {
    b[KvKind::kMlaLatent] += c.latent.bytes();
    b[KvKind::kIndexKeys] += c.index_keys.bytes();
  }
  return b;
}

// With last_rows_only, only each segment's last row queries (the last layer of a pass that wants
// no other row's output): out gets those rows, in segment order; every row still writes the caches.
void MlaPass::attention(const Layer& L, size_t layer, const float* x, float* out, bool last_rows_only) {
  const ModelConfig& M = m_;
  const int64_t T = T_, H = M.n_heads, NP = M.qk_nope_dim, R = M.qk_rope_dim, QK = NP + R, C = M.kv_lora_rank, V = M.v_head_dim;
  const int64_t row_dims = C + R, d = M.hidden;
  const float eps = static_cast<float>(M.rms_eps);
  const LayerQueries<MlaSession> queries(segs_, x, d, last_rows_only);
  const int64_t Tq = queries.count();
  const float* xq = queries.x();

  // Batched, position-independent projections.
  AttnProj p;
  std::vector<float> cq;
  p.q.resize(Tq * H * QK);
  p.kv.resize(T * row_dims);
  std::vector<float>& q = p.q;
  std::vector<float>& kv = p.kv;
  // The sessions of one pass share an attention mode (ModelEngine::step checks).
  const bool dsa = segs_.front().session->indexer_on(L);
  const int64_t HI = M.index_heads, DI = M.index_head_dim;
  std::vector<float>& iq = p.iq;
  std::vector<float>& ik = p.ik;
  std::vector<float>& iw = p.iw;
  // Batched projections, grouped by what they wait for (matmul_group: each exactly as matmul).
  std::vector<MatmulJob> jobs;
  if (M.q_lora_rank > 0) {
    cq.resize(Tq * M.q_lora_rank);
    jobs = {job(FlopCategory::kWeightGemm, xq, Tq, L.wq_a, cq.data()), job(FlopCategory::kWeightGemm, x, T, L.wkv_a, kv.data())};
    matmul_group(ctx_, jobs);
    rms_norm(ctx_, cq.data(), L.q_norm.data(), eps, M.q_lora_rank, Tq, cq.data());
    bf16(cq.data(), Tq * M.q_lora_rank);
    jobs = {job(FlopCategory::kWeightGemm, cq.data(), Tq, L.wq_b, q.data())};
  } else {
    jobs = {job(FlopCategory::kWeightGemm, xq, Tq, L.wq, q.data()), job(FlopCategory::kWeightGemm, x, T, L.wkv_a, kv.data())};
  }
  if (dsa) {
    iq.resize(Tq * HI * DI);
    ik.resize(T * DI);
    iw.resize(Tq * HI);
    jobs.push_back(job(FlopCategory::kWeightGemm, cq.data(), Tq, L.idx_wq_b, iq.data()));
    jobs.push_back(job(FlopCategory::kWeightGemm, x, T, L.idx_wk, ik.data()));
    jobs.push_back(job(FlopCategory::kSmallMatmul, xq, Tq, L.idx_weights_proj, iw.data(), Linear::kF32));
  }
  matmul_group(ctx_, jobs);
  for (int64_t i = 0; i < T; ++i) rms_norm(ctx_, kv.data() + i * row_dims, L.kv_norm.data(), eps, C, 1, kv.data() + i * row_dims);
  bf16(kv.data(), T * row_dims);  // the normed latent (the rope part is wkv_a's BF16 output)

  // Absorb W_UK: q̂_h = W_UK,hᵀ q_nope,h in the latent space (the nope part carries no RoPE).
  // Official: a BF16 einsum on the BF16 kv_b.
  p.qhat.resize(Tq * H * C);
  std::vector<float>& qhat = p.qhat;
  per_head_products(q.data(), QK, NP, Tq, official_ ? L.uk16_head : L.uk_head, qhat.data());

  if (dsa) {
    // LayerNorm with weight and bias (eps 1e-6, as the official Indexer's nn.LayerNorm).
    for (int64_t i = 0; i < T; ++i) {
      float* k = ik.data() + i * DI;
      double mean = 0, var = 0;
      for (int64_t j = 0; j < DI; ++j) mean += k[j];
      mean /= DI;
      for (int64_t j = 0; j < DI; ++j) var += (k[j] - mean) * (k[j] - mean);
      const double inv = 1.0 / std::sqrt(var / DI + 1e-6);
      for (int64_t j = 0; j < DI; ++j) k[j] = static_cast<float>((k[j] - mean) * inv) * L.idx_norm_w[j] + L.idx_norm_b[j];
    }
    bf16(ik.data(), T * DI);
  }

  std::vector<float> olat(Tq * H * C);
  for (size_t k = 0; k < segs_.size(); ++k) {
    const MlaSegment& g = segs_[k];
    g.session->attend_rows(L, layer, p, g.row0, g.rows(), queries.first(k), queries.row(k), olat.data() + queries.row(k) * H * C);
  }

  bf16(olat.data(), Tq * H * C);  // the attention's latent output, a BF16 tensor (official)

  // W_UV per head back from the latent space (official: a BF16 einsum), then the output projection.
  std::vector<float> cat(Tq * H * V);
  per_head_products(olat.data(), C, C, Tq, official_ ? L.uv16_head : L.uv_head, cat.data());
  const MatmulJob out_proj = job(FlopCategory::kWeightGemm, cat.data(), Tq, L.wo, out);
  matmul_group(ctx_, {&out_proj, 1});
}

void MlaSession::attend_rows(const Layer& L, size_t layer, AttnProj& p, int64_t row0, int64_t T, int64_t q0, int64_t qrow0,
                             float* olat) {
  const ModelConfig& M = m();
  const int64_t H = M.n_heads, NP = M.qk_nope_dim, R = M.qk_rope_dim, QK = NP + R, C = M.kv_lora_rank;
  const int64_t row_dims = C + R, HI = M.index_heads, DI = M.index_head_dim;
  const bool dsa = indexer_on(L);
  LayerCache& c = s_.layers[layer];
  float* q = p.q.data() + qrow0 * H * QK;
  float* kv = p.kv.data() + row0 * row_dims;
  const float* qhat = p.qhat.data() + qrow0 * H * C;
  float* iq = dsa ? p.iq.data() + qrow0 * HI * DI : nullptr;
  float* ik = dsa ? p.ik.data() + row0 * DI : nullptr;
  const float* iw = dsa ? p.iw.data() + qrow0 * HI : nullptr;

  // Timeline pass token by token: RoPE and cache writes (rows and index keys). Then the indexer
  // picks each query's rows and every query attends to its rows as stored (its selection, or its
  // causal prefix without DSA), folded into an online softmax, in parallel over queries.
  const int64_t t0 = s_.pos, Tq = T - q0, tq = t0 + q0;  // queries, and the first one's position
  const float scale = w_->softmax_scale, rm = w_->rope_mscale;
  std::vector<float> qcat(Tq * H * row_dims);
  for (int64_t i = 0; i < T; ++i) {
    const int64_t t = t0 + i;
    float* kt = kv + i * row_dims;
    rope_interleaved(ctx_, kt, 1, row_dims, C, w_->rope, t);
    if (rm != 1.0f)
      for (int64_t r = 0; r < R; ++r) kt[C + r] *= rm;
    bf16(kt + C, R);
    c.latent.append(kt);
    if (dsa) {
      float* ki = ik + i * DI;
      rope_half(ctx_, ki, 1, DI, 0, w_->rope, t);
      bf16(ki, DI);
      hadamard_128(std::span<float>(ki, DI));
      bf16(ki, DI);
      if (official()) act_qdq(ki, 1, DI);  // the official FP8 index key (E4M3, power-of-two scale per 128)
      c.index_keys.append(ki);
    }
    if (i < q0) continue;
    const int64_t iq_row = i - q0;  // this query's row in q, qhat, iq and qcat
    float* qt = q + iq_row * H * QK;
    rope_interleaved(ctx_, qt, H, QK, NP, w_->rope, t);
    if (rm != 1.0f)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t r = 0; r < R; ++r) qt[h * QK + NP + r] *= rm;
    bf16(qt, H * QK);
    for (int64_t h = 0; h < H; ++h) {  // [q̂_h | q_rope_h] meets [c_j | k_rope_j]
      std::copy_n(qhat + (iq_row * H + h) * C, C, qcat.data() + (iq_row * H + h) * row_dims);
      std::copy_n(qt + h * QK + NP, R, qcat.data() + (iq_row * H + h) * row_dims + C);
    }
    if (dsa) {
      float* qi = iq + iq_row * HI * DI;
      rope_half(ctx_, qi, HI, DI, 0, w_->rope, t);
      bf16(qi, HI * DI);
      hadamard_128(std::span<float>(qi, HI * DI));
      bf16(qi, HI * DI);
      if (official()) act_qdq(qi, HI, DI);  // FP8 per head: DI = 128 values, one scale
    }
  }
  std::vector<std::vector<int32_t>> selected;
  if (dsa) {
    std::vector<int64_t> visible(Tq);
    for (int64_t i = 0; i < Tq; ++i) visible[i] = tq + i + 1;
    const float wscale = static_cast<float>(1.0 / (std::sqrt(double(HI)) * std::sqrt(double(DI))));
    // Official queries are exact in BF16, and so are the keys where the cache holds them as BF16.
    const bool exact = official() && o_.kv_format == KvFormat::kBf16;
    selected = index_select(ctx_, c.index_keys, iq, HI, iw, wscale, visible, M.index_topk, exact);
  }

  std::vector<OnlineAttention> st(Tq);
  for (auto& a : st) a.reset(H, C);
  ThreadPool& pool = ctx_.pool ? *ctx_.pool : default_pool();
  auto fold = [&](int64_t i, const float* rows, int64_t n, const int64_t* hi) {
    st[i].add(ctx_.isa, qcat.data() + i * H * row_dims, row_dims, row_dims, rows, rows, row_dims, n, scale, nullptr, hi);
  };
  constexpr int64_t kBlock = 1024;
  std::vector<float> rows;
  if (dsa) {
    pool.parallel_for(Tq, 1, [&](int64_t b, int64_t e) {
      std::vector<float> gathered;
      for (int64_t i = b; i < e; ++i) {
        const std::vector<int32_t>& sel = selected[i];
        gathered.resize(sel.size() * row_dims);
        for (size_t j = 0; j < sel.size(); ++j) c.latent.get(sel[j], gathered.data() + j * row_dims);
        fold(i, gathered.data(), static_cast<int64_t>(sel.size()), nullptr);
      }
    });
  } else {
    // Every query sees its causal prefix: blocks of rows decoded once for the chunk.
    for (int64_t p0 = 0; p0 < t0 + T; p0 += kBlock) {
      const int64_t n = std::min(kBlock, t0 + T - p0);
      rows.resize(n * row_dims);
      for (int64_t j = 0; j < n; ++j) c.latent.get(p0 + j, rows.data() + j * row_dims);
      pool.parallel_for(Tq, 1, [&](int64_t b, int64_t e) {
        std::vector<int64_t> hi(H);
        for (int64_t i = std::max(b, p0 - tq); i < e; ++i) {
          std::fill(hi.begin(), hi.end(), tq + i + 1 - p0);
          fold(i, rows.data(), n, hi.data());
        }
      });
    }
  }
  for (int64_t i = 0; i < Tq; ++i) {
    st[i].finish(nullptr, olat + i * H * C, C);
    const int64_t n = dsa ? static_cast<int64_t>(selected[i].size()) : tq + i + 1;
    counters_.add(FlopCategory::kAttentionCore, 2 * H * row_dims * n + 2 * H * C * n,
                  n * c.latent.format().row_bytes() + 4 * H * (C + R + C));
  }
}

// y[i][h] = x[i][h][0, in) · w[h]ᵀ for Tq rows of H heads (x rows x_stride floats apart per head,
// y rows w[h].rows apart): each head's rows gathered, the H products as one group (BF16 einsums
// in official passes).
void MlaPass::per_head_products(const float* x, int64_t x_stride, int64_t in, int64_t Tq, const std::vector<WeightMatrix>& w,
                                float* y) {
  const int64_t H = static_cast<int64_t>(w.size()), out = w.front().rows;
  std::vector<float> xh(H * Tq * in), yh(H * Tq * out);
  std::vector<MatmulJob> jobs;
  for (int64_t h = 0; h < H; ++h) {
    float* xr = xh.data() + h * Tq * in;
    for (int64_t i = 0; i < Tq; ++i) std::copy_n(x + (i * H + h) * x_stride, in, xr + i * in);
    jobs.push_back(job(FlopCategory::kWeightGemm, xr, Tq, w[h], yh.data() + h * Tq * out, Linear::kBf16));
  }
  matmul_group(ctx_, jobs);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < Tq; ++i) std::copy_n(yh.data() + (h * Tq + i) * out, out, y + (i * H + h) * out);
}

void MlaPass::swiglu_ffn(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down, const float* x, int64_t n,
                         float* y) {
  const int64_t F = gate.rows;
  std::vector<float> g(n * F), u(n * F);
  const MatmulJob gu[2] = {job(FlopCategory::kWeightGemm, x, n, gate, g.data()), job(FlopCategory::kWeightGemm, x, n, up, u.data())};
  matmul_group(ctx_, gu);
  swiglu(ctx_, g.data(), u.data(), n * F, 0.0f, g.data());  // no clamps in V3; FP32 on BF16 g, u (official)
  bf16(g.data(), n * F);
  const MatmulJob dn = job(FlopCategory::kWeightGemm, g.data(), n, down, y);
  matmul_group(ctx_, {&dn, 1});
}

void MlaPass::moe(const Layer& L, const float* x, float* out) {
  const ModelConfig& M = m_;
  const int64_t T = T_;
  const int64_t d = M.hidden, E = M.n_routed_experts;
  std::vector<float> logits(T * E);
  matmul(ctx_, FlopCategory::kRouter, x, T, L.router, logits.data());
  RouteParams rp;
  rp.scoring = M.scoring_func == "softmax" ? RouterScoring::kSoftmax : RouterScoring::kSigmoid;
  rp.top_k = static_cast<int>(M.experts_per_tok);
  rp.n_group = static_cast<int>(M.n_group);
  rp.topk_group = static_cast<int>(M.topk_group);
  rp.normalize = M.norm_topk_prob;
  rp.scale = M.routed_scaling;
  std::vector<std::vector<std::pair<int64_t, float>>> by_expert(E);
  for (int64_t i = 0; i < T; ++i) {
    const Route r = route_experts(ctx_, logits.data() + i * E, E, L.router_bias.data(), rp);
    for (size_t k = 0; k < r.experts.size(); ++k) by_expert[r.experts[k]].push_back({i, r.weights[k]});
  }
  std::vector<double> acc(T * d, 0.0);
  std::vector<float> xin, y;
  for (int64_t e = 0; e < E; ++e) {
    const auto& rows = by_expert[e];
    if (rows.empty()) continue;
    const int64_t n = static_cast<int64_t>(rows.size());
    xin.resize(n * d);
    y.resize(n * d);
    for (int64_t r = 0; r < n; ++r) std::copy_n(x + rows[r].first * d, d, xin.data() + r * d);
    swiglu_ffn(L.e_gate[e], L.e_up[e], L.e_down[e], xin.data(), n, y.data());
    for (int64_t r = 0; r < n; ++r)
      for (int64_t k = 0; k < d; ++k) acc[rows[r].first * d + k] += double(rows[r].second) * y[r * d + k];
  }
  if (M.n_shared_experts > 0) {
    y.resize(T * d);
    swiglu_ffn(L.s_gate, L.s_up, L.s_down, x, T, y.data());
    for (int64_t k = 0; k < T * d; ++k) acc[k] += y[k];
  }
  for (int64_t k = 0; k < T * d; ++k) out[k] = static_cast<float>(acc[k]);
  bf16(out, T * d);
}

void MlaPass::run(std::vector<float>* all_logits) {
  const ModelConfig& M = m_;
  const int64_t T = T_, d = M.hidden;
  const float eps = static_cast<float>(M.rms_eps);

  std::vector<float> h(T * d), xn(T * d), y(T * d);
  for (int64_t i = 0; i < T; ++i) embedding_row(w_.embed, tokens_[i], h.data() + i * d);
  bf16(h.data(), T * d);
  // Logits come from every row with all_logits (one segment), else from each segment's last row;
  // the last layer's queries and all after them run on those rows alone.
  const std::vector<int64_t> out_rows = logit_rows(segs_, all_logits != nullptr);
  const int64_t rows_out = static_cast<int64_t>(out_rows.size());
  for (size_t l = 0; l < w_.layers.size(); ++l) {
    const Layer& L = w_.layers[l];
    const bool last_rows_only = this->last_rows_only(l, rows_out);
    rms_norm(ctx_, h.data(), L.attn_norm.data(), eps, d, T_, xn.data());
    bf16(xn.data(), T_ * d);
    attention(L, l, xn.data(), y.data(), last_rows_only);
    if (last_rows_only) {
      keep_rows(h.data(), d, out_rows);
      keep_token_rows(out_rows);
    }
    for (int64_t k = 0; k < T_ * d; ++k) h[k] += y[k];
    bf16(h.data(), T_ * d);  // the official residual is a BF16 tensor
    rms_norm(ctx_, h.data(), L.ffn_norm.data(), eps, d, T_, xn.data());
    bf16(xn.data(), T_ * d);
    if (L.spec.moe) moe(L, xn.data(), y.data());
    else swiglu_ffn(L.w_gate, L.w_up, L.w_down, xn.data(), T_, y.data());
    for (int64_t k = 0; k < T_ * d; ++k) h[k] += y[k];
    bf16(h.data(), T_ * d);
  }

  // Final norm and logits: h holds the logit rows first, in order.
  rms_norm(ctx_, h.data(), w_.norm.data(), eps, d, rows_out, xn.data());
  bf16(xn.data(), rows_out * d);  // the head's FP32 logits come from the BF16 normed rows
  pass_logits(ctx_, w_.head, xn.data(), segs_, all_logits);
}

}  // namespace

std::unique_ptr<Engine> make_deepseek_v32_engine(const ModelConfig& m, const WeightStore& weights, const EngineOptions& opts) {
  if (!m.is_mla()) throw UsageError(fmt::format("{} is not an MLA model", family_name(m.family)));
  if (m.qk_rope_dim % 2) throw UsageError(fmt::format("qk_rope_head_dim must be even, got {}", m.qk_rope_dim));
  if (m.family == Family::kDeepSeekV32) {
    if (m.index_head_dim != static_cast<int64_t>(kHadamardSize))
      throw UsageError(fmt::format("index_head_dim must be {} (the Hadamard size), got {}", kHadamardSize, m.index_head_dim));
    if (m.qk_rope_dim > m.index_head_dim)
      throw UsageError(fmt::format("qk_rope_head_dim ({}) exceeds index_head_dim ({})", m.qk_rope_dim, m.index_head_dim));
    if (m.q_lora_rank <= 0) throw UsageError("the DSA indexer reads the query latent: q_lora_rank must be positive");
  }
  return std::make_unique<ModelEngine<MlaSession, Weights>>(load_weights(m, weights), opts);
}

}  // namespace v4b
