// DeepSeek-V4 forward pass (spec §2), FP32 activations throughout. Weights stay in their stored
// formats (FP8 / FP4 / BF16) and are dequantised inside the matmul kernels; the model-defined
// quantise-dequantise steps of the KV path (FP8 QDQ of the nope dims, Hadamard + FP4 QDQ of the
// indexer) are applied, so cached values are exactly representable in the production layouts.
//
// A chunk of tokens runs every position-independent projection as one batched matmul; the cache
// writes that depend on the timeline (window ring, compressor state, index keys) run token by token
// in order, so prefill, chunked prefill and decode build identical caches. The indexer and the
// attention then run for all the chunk's queries at once (blocked, online softmax, in parallel),
// each query seeing exactly the rows it would have seen at its own step.
//
// Two arithmetics (SessionOptions::numerics):
//  * official (the default): what DeepSeek's inference code computes (spec §7.7). Values are
//    rounded to BF16 exactly where that code holds a BF16 tensor, FP8 / FP4 GEMM inputs go through
//    act_quant (MatmulJob::act_quant), index scores are BF16 with per-head rounding and the picks
//    come in top-k order, and attention folds its index list in 64-entry blocks with BF16
//    probabilities (V4Attend). Compare runs by KL divergence, not bits (spec §7.6);
//  * fp32: activations FP32 between kernels (optionally BF16 GEMM operands), FP32 index scores;
//    the reference path of the FP64 tests.
// Choices where the spec leaves room (kept here, in one place):
//  * index-score ties go to the lower row;
//  * the window always fills attention list slots 0..127 (the official decode's layout; its
//    prefill of fewer than 128 tokens starts the compressed rows at slot T instead);
//  * dense mode (not an official mode) folds rows 0..t in 64-blocks of absolute position, but a
//    chunk's own rows start a new fold at the chunk's first position;
//  * compressor state starts fresh with every session and every reset (§7.4);
//  * the MTP block is not run.
#include "engine/models/deepseek_v4.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>

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

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Cached rows decoded per step of attention and index scoring.
constexpr int64_t kAttendBlock = 1024;

struct Compressor {
  int ratio = 0, coff = 0;
  int64_t width = 0;
  WeightMatrix wkv, wgate;
  std::vector<float> ape, norm;  // ape [ratio][coff*width]
};

struct Layer {
  LayerSpec spec;
  std::vector<float> attn_norm, ffn_norm, q_norm, kv_norm, sink;
  WeightMatrix hc_attn_fn, hc_ffn_fn;
  std::vector<float> hc_attn_base, hc_attn_scale, hc_ffn_base, hc_ffn_scale;
  WeightMatrix wq_a, wq_b, wkv, wo_a, wo_b;
  // MoE
  WeightMatrix gate;
  std::vector<float> gate_bias;
  std::vector<int64_t> tid2eid;
  WeightMatrix shared_w1, shared_w2, shared_w3;
  std::vector<WeightMatrix> w1, w2, w3;
  // CSA / HCA
  Compressor comp, index_comp;
  WeightMatrix index_wq_b, index_weights_proj;
  RopeTable rope;
};

struct Weights {
  std::shared_ptr<const CheckpointReader> keep_mapped;
  ModelConfig m;
  WeightMatrix embed, head, hc_head_fn;
  std::vector<float> norm, hc_head_base, hc_head_scale;
  std::vector<Layer> layers;
};

WeightMatrix mat(const WeightStore& ws, const std::string& prefix) {
  return ws.matrix(prefix + ".weight", prefix + ".scale");
}

Compressor load_compressor(const WeightStore& ws, const std::string& p, int ratio, int64_t width) {
  Compressor c;
  c.ratio = ratio;
  c.coff = ratio == 4 ? 2 : 1;
  c.width = width;
  c.wkv = ws.matrix(p + ".wkv.weight", "");
  c.wgate = ws.matrix(p + ".wgate.weight", "");
  c.ape = ws.floats(p + ".ape");
  c.norm = ws.floats(p + ".norm.weight");
  return c;
}

std::shared_ptr<const Weights> load_weights(const ModelConfig& m, const WeightStore& ws) {
  auto w = std::make_shared<Weights>();
  w->keep_mapped = ws.checkpoint();
  w->m = m;
  w->embed = ws.matrix("embed.weight", "");
  w->head = ws.matrix("head.weight", "");
  w->norm = ws.floats("norm.weight");
  w->hc_head_fn = ws.matrix("hc_head_fn", "");
  w->hc_head_base = ws.floats("hc_head_base");
  w->hc_head_scale = ws.floats("hc_head_scale");
  const YarnParams yarn{m.rope_scaling.factor, m.rope_scaling.original_max_position, m.rope_scaling.beta_fast,
                        m.rope_scaling.beta_slow};
  for (int64_t i = 0; i < m.n_layers; ++i) {
    const std::string p = fmt::format("layers.{}.", i);
    Layer l;
    l.spec = m.layers[i];
    l.attn_norm = ws.floats(p + "attn_norm.weight");
    l.ffn_norm = ws.floats(p + "ffn_norm.weight");
    l.hc_attn_fn = ws.matrix(p + "hc_attn_fn", "");
    l.hc_attn_base = ws.floats(p + "hc_attn_base");
    l.hc_attn_scale = ws.floats(p + "hc_attn_scale");
    l.hc_ffn_fn = ws.matrix(p + "hc_ffn_fn", "");
    l.hc_ffn_base = ws.floats(p + "hc_ffn_base");
    l.hc_ffn_scale = ws.floats(p + "hc_ffn_scale");
    l.sink = ws.floats(p + "attn.attn_sink");
    l.wq_a = mat(ws, p + "attn.wq_a");
    l.q_norm = ws.floats(p + "attn.q_norm.weight");
    l.wq_b = mat(ws, p + "attn.wq_b");
    l.wkv = mat(ws, p + "attn.wkv");
    l.kv_norm = ws.floats(p + "attn.kv_norm.weight");
    l.wo_a = mat(ws, p + "attn.wo_a");
    l.wo_b = mat(ws, p + "attn.wo_b");
    l.gate = ws.matrix(p + "ffn.gate.weight", "");
    if (l.spec.hash_routed) l.tid2eid = ws.int64s(p + "ffn.gate.tid2eid");
    else l.gate_bias = ws.floats(p + "ffn.gate.bias");
    if (m.n_shared_experts > 0) {
      l.shared_w1 = mat(ws, p + "ffn.shared_experts.w1");
      l.shared_w2 = mat(ws, p + "ffn.shared_experts.w2");
      l.shared_w3 = mat(ws, p + "ffn.shared_experts.w3");
    }
    for (int64_t e = 0; e < m.n_routed_experts; ++e) {
      const std::string ep = fmt::format("{}ffn.experts.{}.", p, e);
      l.w1.push_back(mat(ws, ep + "w1"));
      l.w2.push_back(mat(ws, ep + "w2"));
      l.w3.push_back(mat(ws, ep + "w3"));
    }
    if (l.spec.attn != AttnKind::kSwa) {
      l.comp = load_compressor(ws, p + "attn.compressor", l.spec.compress_ratio, m.head_dim);
      l.rope = make_rope_table(m.qk_rope_dim, m.compress_rope_theta, &yarn);
    } else {
      l.rope = make_rope_table(m.qk_rope_dim, m.rope_theta);
    }
    if (l.spec.attn == AttnKind::kCsa) {
      l.index_comp = load_compressor(ws, p + "attn.indexer.compressor", l.spec.compress_ratio, m.index_head_dim);
      l.index_wq_b = mat(ws, p + "attn.indexer.wq_b");
      l.index_weights_proj = ws.matrix(p + "attn.indexer.weights_proj.weight", "");
    }
    w->layers.push_back(std::move(l));
  }
  return w;
}

// FP8 QDQ of dims [0, n) in blocks of 64 (spec §2.1.5), for any head size.
void kv_qdq(float* x, int64_t n) {
  for (int64_t lo = 0; lo < n; lo += kKvQdqBlock) {
    const int64_t hi = std::min(n, lo + static_cast<int64_t>(kKvQdqBlock));
    float amax = 0;
    for (int64_t i = lo; i < hi; ++i) amax = std::max(amax, std::fabs(x[i]));
    const int e = e4m3_scale_exponent(amax);
    for (int64_t i = lo; i < hi; ++i) x[i] = std::ldexp(e4m3_to_float(float_to_e4m3(std::ldexp(x[i], -e))), e);
  }
}

// The official per-head query norm (spec §7.2): q *= rsqrt(mean(q²) + eps) on a BF16 tensor, so the
// squares, their mean, + eps, the rsqrt and the product each round to BF16. `rows` rows of n.
void head_norm_bf16(float* q, int64_t n, int64_t rows, float eps) {
  const auto b = round_to_bf16;
  for (int64_t r = 0; r < rows; ++r) {
    float* x = q + r * n;
    float ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += b(x[i] * x[i]);
    const float inv = b(1.0f / std::sqrt(b(b(ss / static_cast<float>(n)) + eps)));
    for (int64_t i = 0; i < n; ++i) x[i] = b(x[i] * inv);
  }
}

ThreadPool& pool_for(const KernelContext& ctx) { return ctx.pool ? *ctx.pool : default_pool(); }

// The indexer's head-weight scale 1 / (sqrt(index_head_dim) sqrt(index_heads)) (spec §2.6 step 3).
float index_weight_scale(const ModelConfig& m) {
  return 1.0f / (std::sqrt(static_cast<float>(m.index_head_dim)) * std::sqrt(static_cast<float>(m.index_heads)));
}

// Partial-window state of one compressor (spec §2.5): rows x (coff*width) kv and scores.
struct CompressorState {
  std::vector<float> kv, score;
};

struct LayerCache {
  KvRows window;      // ring of min(t, W) rows (native, window); every raw row (dense)
  KvRows compressed;  // CSA / HCA rows
  KvRows index_keys;  // CSA indexer keys
  // The same keys as 8-bit integers where the CPU scores them so (index_scores_int8): a copy for the
  // indexer to read, not part of the KV cache the spec (and kv_bytes) counts.
  IndexKeysInt8 index_keys8;
  // bf16_activations sessions outside dense mode: the window ring's rows, rounded to BF16 (exact,
  // as cached) at their ring slots, so a decode step reads its window without decoding it. A
  // copy for attention to read, likewise not counted.
  Bf16KvRows window16;
  CompressorState comp, index_comp;

  // A chunk of T tokens attends to a window read from the ring's BF16 copy (a decode step outside
  // dense mode, where the copy is kept), not to the chunk's own decoded raw rows.
  bool window_from_ring(int64_t T, bool dense) const { return window16.size() > 0 && T == 1 && !dense; }
};

struct State : Session::Snapshot {
  int64_t pos = 0;
  std::vector<LayerCache> layers;
  std::vector<float> logits;
};

// One layer's attention projections, row-major: the cache side (kv, compressors) for every row
// of a pass, the query side (q, iq, iw_heads) for the rows that query. The session's timeline pass
// applies RoPE and the QDQ steps in place to its own rows.
struct AttnProj {
  Scratch<float> q, kv, ckv, csc, ikv, isc, iq, iw_heads;
  int64_t cw = 0, iw = 0;  // channels (coff * width) of the main and the index compressor
};

// One query's heads (a decode step) against its n_win window rows and n_comp compressed rows
// (q·k / sqrt(D), shared K = V, sink per head); fold(state, compressed, r0, n) folds rows
// [r0, r0 + n) of either into a state. The rows go in fixed blocks that the threads share, each
// folded into its own softmax state; the states merge in block order, so the result does not
// depend on the thread count.
template <class Fold>
void attend_one(const KernelContext& ctx, int64_t H, int64_t D, int64_t n_win, int64_t n_comp, const float* sink, float* out,
                const Fold& fold) {
  constexpr int64_t kBlock = 64;  // small enough that a window and a few rows split over two threads
  struct Block {
    bool compressed;
    int64_t r0, n;
  };
  std::vector<Block> blocks;
  for (int64_t r = 0; r < n_win; r += kBlock) blocks.push_back({false, r, std::min(kBlock, n_win - r)});
  for (int64_t r = 0; r < n_comp; r += kBlock) blocks.push_back({true, r, std::min(kBlock, n_comp - r)});
  std::vector<OnlineAttention> st(blocks.size());
  ThreadPool& pool = ctx.pool ? *ctx.pool : default_pool();
  pool.parallel_for(static_cast<int64_t>(blocks.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      st[i].reset(H, D);
      fold(st[i], blocks[i].compressed, blocks[i].r0, blocks[i].n);
    }
  });
  for (size_t i = 1; i < st.size(); ++i) st[0].merge(st[i]);
  st[0].finish(sink, out, D);
}

// Rows [r0, r0 + n) as an ascending index list (OnlineAttention::add_bf16), in scratch of the calling thread.
const int32_t* row_range(int64_t r0, int64_t n) {
  thread_local std::vector<int32_t> idx;
  idx.resize(n);
  std::iota(idx.begin(), idx.end(), static_cast<int32_t>(r0));
  return idx.data();
}

class V4Session;
using V4Segment = Segment<V4Session>;

class V4Session final : public ModelSession<Weights, State, V4Session> {
 public:
  V4Session(std::shared_ptr<const Weights> w, SessionOptions o, ThreadPool* pool, CpuIsa isa)
      : ModelSession(std::move(w), o, pool, isa) {
    reset();
  }

  // One forward pass over the segments' sessions (tokens checked; all_logits with one segment only).
  static void forward(std::span<const V4Segment> segs, std::vector<float>* all_logits);
  KvBytes kv_bytes() const override;
  void reset() override;

 private:
  friend class V4Pass;
  bool compressed_on() const { return o_.attention == AttentionMode::kNative; }

  // This session's rows [row0, row0 + T) of a layer's attention: cache writes and compressors for
  // all, indexer and attention for the queries, its rows [q0, T) (q0 = 0, or T - 1 where only the
  // last row's output is wanted), whose projections are rows qrow0.. of p.q, p.iq and p.iw_heads;
  // into out [T - q0][H*D] (before the output projection).
  void attend_rows(const Layer& L, size_t layer, AttnProj& p, int64_t row0, int64_t T, int64_t q0, int64_t qrow0, float* out);
  void compressor_step(const Compressor& cp, CompressorState& st, const float* kv_proj, const float* score_proj, int64_t t,
                       const RopeTable& rope, bool index, KvRows& rows);
  void attend(const Layer& L, const LayerCache& c, const float* q, int64_t T, int64_t q0, const float* raw, int64_t raw_lo,
              std::span<const int64_t> n_comp, const std::vector<std::vector<int32_t>>& selected, float* out);
};

// The row-wise part of a forward pass, over every segment's rows at once: embedding, mHC, norms,
// projections, experts and the head; attend_rows runs per session in between.
class V4Pass : PassRows<V4Session, Weights> {
 public:
  V4Pass(std::span<const V4Segment> segs, const KernelContext& ctx) : PassRows(segs, *segs.front().session->w_, ctx) {}
  void run(std::vector<float>* all_logits);

 private:
  void hc_pre(const WeightMatrix& fn, const std::vector<float>& base, const std::vector<float>& scale, const float* X, float* u,
              float* post, float* comb);
  void hc_post(const float* o, const float* post, const float* comb, float* X);
  void attention(const Layer& L, size_t layer, const float* x, float* out, bool last_rows_only);
  void moe(const Layer& L, const float* x, float* out);
};

void V4Session::forward(std::span<const V4Segment> segs, std::vector<float>* all_logits) {
  const PassCounts<V4Session> counts(segs);
  V4Pass(segs, counts.ctx()).run(all_logits);
}

void V4Session::reset() {
  s_ = State{};
  const int64_t D = m().head_dim, R = m().qk_rope_dim;
  for (const Layer& L : w_->layers) {
    LayerCache c;
    c.window = KvRows({RowCodec::kV4Kv, o_.kv_format, D, R});
    if (o_.bf16_activations && o_.attention != AttentionMode::kDense) c.window16.resize(m().window, D, /*zeroed=*/true);
    if (compressed_on() && L.spec.attn != AttnKind::kSwa) {
      c.compressed = KvRows({RowCodec::kV4Kv, o_.kv_format, D, R});
      auto init = [](const Compressor& cp, CompressorState& st) {
        const int64_t n = static_cast<int64_t>(cp.coff) * cp.ratio * cp.coff * cp.width;
        st.kv.assign(n, 0.0f);
        st.score.assign(n, kNegInf);
      };
      init(L.comp, c.comp);
      if (L.spec.attn == AttnKind::kCsa) {
        c.index_keys = KvRows({RowCodec::kFp4Key, o_.kv_format, m().index_head_dim, 0});
        c.index_keys8.reset(m().index_head_dim);
        init(L.index_comp, c.index_comp);
      }
    }
    s_.layers.push_back(std::move(c));
  }
}

KvBytes V4Session::kv_bytes() const {
  KvBytes b;
  for (size_t i = 0; i < s_.layers.size(); ++i) {
    const LayerCache& c = s_.layers[i];
    b[KvKind::kWindow] += c.window.bytes();
    (w_->layers[i].spec.attn == AttnKind::kCsa ? b[KvKind::kCompressedCsa] : b[KvKind::kCompressedHca]) += c.compressed.bytes();
    b[KvKind::kIndexKeys] += c.index_keys.bytes();
    b[KvKind::kCompressorState] +=
        static_cast<int64_t>(4 * (c.comp.kv.size() + c.comp.score.size() + c.index_comp.kv.size() + c.index_comp.score.size()));
  }
  return b;
}

// mHC pre (spec §2.3.1): X [T][n_hc][d] -> u [T][d], post [T][n_hc], comb [T][n_hc][n_hc].
void V4Pass::hc_pre(const WeightMatrix& fn, const std::vector<float>& base, const std::vector<float>& scale, const float* X,
                    float* u, float* post, float* comb) {
  const int64_t T = T_, d = m_.hidden, n = m_.hc_mult, flat = n * d, mixes = (2 + n) * n;
  std::vector<float> mix(T * mixes);
  matmul(ctx_, FlopCategory::kMhc, X, T, fn, mix.data());
  ThreadPool& pool = ctx_.pool ? *ctx_.pool : default_pool();
  pool.parallel_for(T, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* x = X + t * flat;
      double ss = 0;
      for (int64_t i = 0; i < flat; ++i) ss += double(x[i]) * x[i];
      const float r = static_cast<float>(1.0 / std::sqrt(ss / flat + m_.rms_eps));
      float* mx = mix.data() + t * mixes;
      for (int64_t i = 0; i < mixes; ++i) mx[i] *= r;
      float pre[8];
      for (int64_t i = 0; i < n; ++i) pre[i] = 1.0f / (1.0f + std::exp(-(mx[i] * scale[0] + base[i]))) + static_cast<float>(m_.hc_eps);
      for (int64_t j = 0; j < n; ++j) post[t * n + j] = 2.0f / (1.0f + std::exp(-(mx[n + j] * scale[1] + base[n + j])));
      float* cb = comb + t * n * n;
      for (int64_t k = 0; k < n * n; ++k) cb[k] = mx[2 * n + k] * scale[2] + base[2 * n + k];
      sinkhorn(ctx_, cb, n, m_.hc_sinkhorn_iters, static_cast<float>(m_.hc_eps));
      float* ut = u + t * d;
      std::fill(ut, ut + d, 0.0f);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < d; ++c) ut[c] += pre[i] * x[i * d + c];
      bf16(ut, d);
    }
  });
}

// mHC post (spec §2.3.3): X'[j] = post_j * o + sum_i comb[i][j] * X[i]. Rows in parallel; each
// output channel sums its terms in the order written.
void V4Pass::hc_post(const float* o, const float* post, const float* comb, float* X) {
  const int64_t T = T_, d = m_.hidden, n = m_.hc_mult;
  ThreadPool& pool = ctx_.pool ? *ctx_.pool : default_pool();
  pool.parallel_for(T, 16, [&](int64_t t0, int64_t t1) {
    std::vector<float> nx(n * d);
    for (int64_t t = t0; t < t1; ++t) {
      float* x = X + t * n * d;
      const float* cb = comb + t * n * n;
      const float* ot = o + t * d;
      for (int64_t j = 0; j < n; ++j) {
        float* y = nx.data() + j * d;
        const float pj = post[t * n + j];
        for (int64_t c = 0; c < d; ++c) y[c] = pj * ot[c];
        for (int64_t i = 0; i < n; ++i) {
          const float w = cb[i * n + j];
          const float* xi = x + i * d;
          for (int64_t c = 0; c < d; ++c) y[c] += w * xi[c];
        }
      }
      bf16(nx.data(), n * d);
      std::copy(nx.begin(), nx.end(), x);
    }
  });
}

// One token's compressor update (spec §2.5): writes its slot, emits a finished row when its block
// completes. kv_proj / score_proj are this token's [coff*width] projections (score without ape).
void V4Session::compressor_step(const Compressor& cp, CompressorState& st, const float* kv_proj, const float* score_proj,
                                int64_t t, const RopeTable& rope, bool index, KvRows& rows) {
  const int64_t ch = cp.coff * cp.width, in_block = t % cp.ratio;
  const int64_t slot = (cp.coff == 2 ? cp.ratio : 0) + in_block;
  for (int64_t c = 0; c < ch; ++c) {
    st.kv[slot * ch + c] = kv_proj[c];
    st.score[slot * ch + c] = score_proj[c] + cp.ape[in_block * ch + c];
  }
  if ((t + 1) % cp.ratio) return;

  // Per-channel softmax pooling: CSA mixes lane A of the previous block (rows 0..3, channels
  // [0, w)) with lane B of this one (rows 4..7, channels [w, 2w)); HCA pools its 128 rows.
  const int64_t w = cp.width, n_slots = cp.coff * cp.ratio;
  std::vector<float> row(w);
  for (int64_t c = 0; c < w; ++c) {
    float mx = kNegInf;
    for (int64_t r = 0; r < n_slots; ++r) {
      const int64_t cc = cp.coff == 2 && r >= cp.ratio ? w + c : c;
      mx = std::max(mx, st.score[r * ch + cc]);
    }
    double num = 0, den = 0;
    for (int64_t r = 0; r < n_slots; ++r) {
      const int64_t cc = cp.coff == 2 && r >= cp.ratio ? w + c : c;
      const float sc = st.score[r * ch + cc];
      if (sc == kNegInf) continue;
      const double e = std::exp(double(sc) - mx);
      num += e * st.kv[r * ch + cc];
      den += e;
    }
    row[c] = static_cast<float>(num / den);
  }
  if (cp.coff == 2) {
    std::copy(st.kv.begin() + cp.ratio * ch, st.kv.end(), st.kv.begin());
    std::copy(st.score.begin() + cp.ratio * ch, st.score.end(), st.score.begin());
  }
  counters_.add(FlopCategory::kElementwise, 4 * n_slots * w, 8 * n_slots * w);

  // Official: the pooled row, its norm, its RoPE and the Hadamard rotation each give a BF16 tensor.
  bf16(row.data(), w);
  rms_norm(ctx_, row.data(), cp.norm.data(), static_cast<float>(m().rms_eps), w, 1, row.data());
  bf16(row.data(), w);
  const int64_t R = m().qk_rope_dim;
  rope_interleaved(ctx_, row.data(), 1, w, w - R, rope, t + 1 - cp.ratio);
  bf16(row.data(), w);
  if (index) {
    hadamard_128(row);
    bf16(row.data(), w);
    fp4_qdq(row);
  } else {
    kv_qdq(row.data(), w - R);
  }
  rows.append(row.data());
}

// With last_rows_only, only each segment's last row queries (the last layer of a pass that wants
// no other row's output): out gets those rows, in segment order; every row still writes the caches.
void V4Pass::attention(const Layer& L, size_t layer, const float* x, float* out, bool last_rows_only) {
  const ModelConfig& M = m_;
  const int64_t T = T_, d = M.hidden, H = M.n_heads, D = M.head_dim;
  const LayerQueries<V4Session> queries(segs_, x, d, last_rows_only);
  const int64_t Tq = queries.count();
  const float* xq = queries.x();
  const float eps = static_cast<float>(M.rms_eps);

  // Batched projections over every row of the pass, grouped by their input (matmul_group).
  // The sessions of one pass share an attention mode (ModelEngine::step checks).
  const bool compress = segs_.front().session->compressed_on() && L.spec.attn != AttnKind::kSwa;
  const bool csa = compress && L.spec.attn == AttnKind::kCsa;
  AttnProj p;
  p.cw = compress ? L.comp.coff * L.comp.width : 0;
  p.iw = csa ? L.index_comp.coff * L.index_comp.width : 0;
  Scratch<float> cq(Tq * M.q_lora_rank);
  p.q.resize(Tq * H * D);
  p.kv.resize(T * D);
  p.ckv.resize(T * p.cw);
  p.csc.resize(T * p.cw);
  p.ikv.resize(T * p.iw);
  p.isc.resize(T * p.iw);
  std::vector<MatmulJob> jobs = {job(FlopCategory::kWeightGemm, xq, Tq, L.wq_a, cq.data()),
                                 job(FlopCategory::kWeightGemm, x, T, L.wkv, p.kv.data())};
  if (compress) {
    jobs.push_back(job(FlopCategory::kCompressor, x, T, L.comp.wkv, p.ckv.data(), Linear::kF32));
    jobs.push_back(job(FlopCategory::kCompressor, x, T, L.comp.wgate, p.csc.data(), Linear::kF32));
  }
  if (csa) {
    p.iq.resize(Tq * M.index_heads * M.index_head_dim);
    p.iw_heads.resize(Tq * M.index_heads);
    jobs.push_back(job(FlopCategory::kCompressor, x, T, L.index_comp.wkv, p.ikv.data(), Linear::kF32));
    jobs.push_back(job(FlopCategory::kCompressor, x, T, L.index_comp.wgate, p.isc.data(), Linear::kF32));
    jobs.push_back(job(FlopCategory::kSmallMatmul, xq, Tq, L.index_weights_proj, p.iw_heads.data()));
  }
  matmul_group(ctx_, jobs);
  rms_norm(ctx_, cq.data(), L.q_norm.data(), eps, M.q_lora_rank, Tq, cq.data());
  bf16(cq.data(), Tq * M.q_lora_rank);
  jobs = {job(FlopCategory::kWeightGemm, cq.data(), Tq, L.wq_b, p.q.data())};
  if (csa) jobs.push_back(job(FlopCategory::kWeightGemm, cq.data(), Tq, L.index_wq_b, p.iq.data()));
  matmul_group(ctx_, jobs);
  if (official_)  // per-head norm in BF16 arithmetic (spec §7.2)
    pool_for(ctx_).parallel_for(Tq * H, 64, [&](int64_t b, int64_t e) { head_norm_bf16(p.q.data() + b * D, D, e - b, eps); });
  else rms_norm(ctx_, p.q.data(), static_cast<const float*>(nullptr), eps, D, Tq * H, p.q.data());
  rms_norm(ctx_, p.kv.data(), L.kv_norm.data(), eps, D, T, p.kv.data());
  bf16(p.kv.data(), T * D);
  if (csa) {  // head weights scaled by 1 / (sqrt(DI) sqrt(HI)); official: bf16(bf16(weights_proj x) · c) (spec §7.7 h)
    const float c = index_weight_scale(M);
    for (float& v : p.iw_heads) v *= c;
    bf16(p.iw_heads.data(), Tq * M.index_heads);
  }

  for (size_t k = 0; k < segs_.size(); ++k) {
    const V4Segment& g = segs_[k];
    g.session->attend_rows(L, layer, p, g.row0, g.rows(), queries.first(k), queries.row(k), out + queries.row(k) * H * D);
  }

  // Grouped low-rank output (spec §2.4 step 7): group g reads heads [g*H/G, (g+1)*H/G).
  const int64_t G = M.o_groups, gin = H * D / G, ro = M.o_lora_rank;
  std::vector<Scratch<float>> gx(G), gy(G);
  std::vector<WeightMatrix> wo_a(G);
  jobs.clear();
  for (int64_t g = 0; g < G; ++g) {
    gx[g].resize(Tq * gin);
    gy[g].resize(Tq * ro);
    for (int64_t i = 0; i < Tq; ++i) std::copy_n(out + i * H * D + g * gin, gin, gx[g].data() + i * gin);
    wo_a[g] = slice_rows(L.wo_a, g * ro, ro);
    jobs.push_back(job(FlopCategory::kWeightGemm, gx[g].data(), Tq, wo_a[g], gy[g].data(), Linear::kBf16));
  }
  matmul_group(ctx_, jobs);
  Scratch<float> cat(Tq * G * ro);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t i = 0; i < Tq; ++i) std::copy_n(gy[g].data() + i * ro, ro, cat.data() + i * G * ro + g * ro);
  Scratch<float> y(Tq * d);
  const MatmulJob out_proj = job(FlopCategory::kWeightGemm, cat.data(), Tq, L.wo_b, y.data());
  matmul_group(ctx_, {&out_proj, 1});
  std::copy(y.begin(), y.end(), out);
}

void V4Session::attend_rows(const Layer& L, size_t layer, AttnProj& p, int64_t row0, int64_t T, int64_t q0, int64_t qrow0,
                            float* out) {
  const ModelConfig& M = m();
  const int64_t H = M.n_heads, D = M.head_dim, R = M.qk_rope_dim, N = D - R, W = M.window;
  const int64_t HI = M.index_heads, DI = M.index_head_dim, cw = p.cw, iw = p.iw;
  const bool compress = cw > 0, csa = iw > 0;
  LayerCache& c = s_.layers[layer];
  const int64_t Tq = T - q0;
  float* q = p.q.data() + qrow0 * H * D;
  float* kv = p.kv.data() + row0 * D;

  // Timeline pass, token by token in order: cache writes and compressor steps. The
  // attention itself then runs for the whole chunk at once (attend), reading each raw row as it
  // was stored. The ring overwrites rows the chunk's early queries still need, so the raw rows of
  // positions [raw_lo, t0 + T) are kept decoded here; dense mode reads earlier rows from its cache,
  // and a decode step with BF16 operands from the window's BF16 copy.
  const int64_t t0 = s_.pos;
  const bool dense = o_.attention == AttentionMode::kDense, ring16 = c.window16.size() > 0;
  const int64_t raw_lo = dense || c.window_from_ring(T, dense) ? t0 : std::max<int64_t>(0, t0 - (W - 1));
  const auto raw = std::make_unique_for_overwrite<float[]>((t0 + T - raw_lo) * D);  // every row written below
  for (int64_t pp = raw_lo; pp < t0; ++pp) c.window.get(pp % W, raw.get() + (pp - raw_lo) * D);
  ThreadPool& pool = ctx_.pool ? *ctx_.pool : default_pool();
  // What each token needs of itself alone (RoPE, the KV and indexer-query QDQ) runs over the pool first.
  pool.parallel_for(T, 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t t = t0 + i;
      rope_interleaved(ctx_, kv + i * D, 1, D, N, L.rope, t);
      bf16(kv + i * D, D);
      kv_qdq(kv + i * D, N);
      if (i < q0) continue;
      rope_interleaved(ctx_, q + (i - q0) * H * D, H, D, N, L.rope, t);
      bf16(q + (i - q0) * H * D, H * D);
      if (!csa) continue;
      float* qi = p.iq.data() + (qrow0 + i - q0) * HI * DI;
      rope_interleaved(ctx_, qi, HI, DI, DI - R, L.rope, t);
      bf16(qi, HI * DI);
      hadamard_128(std::span<float>(qi, HI * DI));
      bf16(qi, HI * DI);
      fp4_qdq(std::span<float>(qi, HI * DI));
    }
  });
  std::vector<int64_t> n_comp(T, 0), n_index(T, 0);
  const bool int8_keys = csa && index_int8_supported(ctx_, HI, DI);
  std::vector<float> key(DI);
  for (int64_t i = 0; i < T; ++i) {
    const int64_t t = t0 + i, r = row0 + i;
    const float* kt = kv + i * D;
    if (dense || c.window.size() < W) c.window.append(kt);
    else c.window.set(t % W, kt);
    c.window.get(dense ? t : t % W, raw.get() + (t - raw_lo) * D);
    if (ring16) c.window16.set_row(t % W, raw.get() + (t - raw_lo) * D);
    if (compress) {
      compressor_step(L.comp, c.comp, p.ckv.data() + r * cw, p.csc.data() + r * cw, t, L.rope, false, c.compressed);
      n_comp[i] = c.compressed.size();
    }
    if (csa) {
      compressor_step(L.index_comp, c.index_comp, p.ikv.data() + r * iw, p.isc.data() + r * iw, t, L.rope, true, c.index_keys);
      n_index[i] = c.index_keys.size();
      if (int8_keys && n_index[i] > c.index_keys8.size()) {  // a key emitted: mirrored as it was stored
        c.index_keys.get(n_index[i] - 1, key.data());
        c.index_keys8.push_back(key.data());
      }
    }
  }
  // Lightning indexer (spec §2.6): each query keeps the top-k of the keys visible to it.
  std::vector<std::vector<int32_t>> selected;
  if (csa) {
    // The head weights come scaled (V4Pass::attention).
    selected = index_select(ctx_, c.index_keys, p.iq.data() + qrow0 * HI * DI, HI, p.iw_heads.data() + qrow0 * HI, 1.0f,
                            std::span<const int64_t>(n_index).subspan(q0), M.index_topk, /*exact_bf16=*/true,
                            int8_keys ? &c.index_keys8 : nullptr, /*bf16_scores=*/official());
  }
  attend(L, c, q, T, q0, raw.get(), raw_lo, std::span<const int64_t>(n_comp).subspan(q0), selected, out);
  bf16(out, Tq * H * D);  // the attention output, a BF16 tensor (official)
  pool.parallel_for(Tq, 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      rope_interleaved(ctx_, out + i * H * D, H, D, N, L.rope, t0 + q0 + i, /*inverse=*/true);
      bf16(out + i * H * D, H * D);
    }
  });
}

// Core attention with sink (spec §2.4 step 5, §7.7 i) for the queries of a chunk of T tokens, its
// rows [q0, T), in named steps that both numerics share. Each query's heads fold their index list
// in order: the window (dense mode: the raw rows before the chunk, then the chunk's own), then the
// compressed rows (CSA: the indexer's picks in the order listed; HCA: every visible row ascending).
// fp32 sessions fold FP32 rows, or BF16 operands with bf16_activations, in blocks of any size, and
// split a decode step's rows over the threads (split-K). Official sessions fold BF16 operands in
// the 64-entry blocks of the list (the window filling slots 0..W-1, the compressed rows after),
// one state per query and share of heads, as the official kernel does.
class V4Attend {
 public:
  // Rows a fold reads: n FP32 rows one after another (f32), or BF16 rows b16 at indices idx.
  struct Rows {
    const float* f32 = nullptr;
    const Bf16KvRows* b16 = nullptr;
    const int32_t* idx = nullptr;
  };

  V4Attend(const KernelContext& ctx, const LayerCache& c, const ModelConfig& m, bool dense, bool official, int64_t t0, int64_t T,
           int64_t q0, const float* q, const float* raw, int64_t raw_lo, std::span<const int64_t> n_comp,
           const std::vector<std::vector<int32_t>>& selected)
      : ctx_(ctx), c_(c), H_(m.n_heads), D_(m.head_dim), W_(m.window), t0_(t0), T_(T), q0_(q0), Tq_(T - q0), raw_lo_(raw_lo),
        dense_(dense), official_(official), bf16_(ctx.bf16_activations), csa_(!selected.empty()),
        ring_window_(c.window_from_ring(T, dense)), scale_(1.0f / std::sqrt(static_cast<float>(m.head_dim))),
        pool_(ctx.pool ? *ctx.pool : default_pool()), q_(q), raw_(raw), n_comp_(n_comp), selected_(selected) {
    prepare_operands();
    gather_compressed();
  }

  void run(const float* sink, float* out) {
    if (T_ == 1 && !dense_ && !official_) decode_split_k(sink, out);
    else per_query(sink, out);
  }

 private:
  // BF16 operands: the queries rounded once, the chunk's raw rows as BF16 rows (exact, as cached).
  void prepare_operands() {
    if (!bf16_) return;
    q16_.resize(Tq_ * H_ * D_);
    pool_.parallel_for(Tq_ * H_, 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b * D_; i < e * D_; ++i) q16_[i] = float_to_bf16(q_[i]).bits;
    });
    if (ring_window_) return;  // a decode step reads its window from the ring's BF16 copy
    raw16_.resize(t0_ + T_ - raw_lo_, D_);
    pool_.parallel_for(raw16_.size(), 64, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) raw16_.set_row(r, raw_ + r * D_);
    });
  }

  // n cache rows, row r being src's row at(r): decoded into f32 (FP32 path), or as BF16 into b16.
  void decode_rows(int64_t n, const KvRows& src, const std::function<int64_t(int64_t)>& at, float* f32, Bf16KvRows& b16) const {
    if (bf16_) b16.resize(n, D_);
    pool_.parallel_for(n, 64, [&](int64_t b, int64_t e) {
      Scratch<uint16_t> row(bf16_ ? D_ : 0);
      for (int64_t r = b; r < e; ++r) {
        if (!bf16_) {
          src.get(at(r), f32 + r * D_);
          continue;
        }
        src.get_bf16(at(r), row.data());
        b16.set_row_bits(r, row.data());
      }
    });
  }

  // HCA sees every compressed row emitted so far, CSA the rows its indexer picked: each row any
  // query needs is decoded once for the chunk (CSA queries of one chunk pick largely the same rows).
  void gather_compressed() {
    if (n_comp_.empty() || n_comp_.back() == 0) return;
    std::vector<int32_t> rows_needed;  // CSA: ascending, so a lone query's ascending picks are comp as it is
    if (csa_) {
      slot_.assign(n_comp_.back(), -1);
      for (const auto& sel : selected_)
        for (int32_t r : sel) slot_[r] = 1;
      for (int32_t r = 0; r < static_cast<int32_t>(slot_.size()); ++r)
        if (slot_[r] > 0) {
          slot_[r] = static_cast<int32_t>(rows_needed.size());
          rows_needed.push_back(r);
        }
    }
    n_rows_ = csa_ ? static_cast<int64_t>(rows_needed.size()) : n_comp_.back();
    if (!bf16_) comp_ = std::make_unique_for_overwrite<float[]>(n_rows_ * D_);
    decode_rows(n_rows_, c_.compressed, [&](int64_t r) { return csa_ ? rows_needed[r] : r; }, comp_.get(), comp16_);
  }

  // Folds n rows, the first at list slot slot0, into a state for the heads at query offset qoff;
  // official sessions fold no block across a multiple of 64 slots.
  void fold(OnlineAttention& st, int64_t qoff, const Rows& rows, int64_t n, int64_t slot0) const {
    for (int64_t j = 0; j < n;) {
      const int64_t len = official_ ? std::min(n - j, kListBlock - (slot0 + j) % kListBlock) : n - j;
      if (bf16_) st.add_bf16(ctx_.isa, q16_.data() + qoff, D_, *rows.b16, rows.idx + j, len, scale_);
      else st.add(ctx_.isa, q_ + qoff, D_, D_, rows.f32 + j * D_, rows.f32 + j * D_, D_, len, scale_);
      j += len;
    }
  }
  // The raw rows of positions [lo, lo + n): the chunk's decoded rows (or the ring's, a decode step's window).
  Rows raw_rows(int64_t lo, int64_t n, std::vector<int32_t>& idx) const {
    if (!bf16_) return {raw_ + (lo - raw_lo_) * D_};
    idx.resize(n);
    for (int64_t j = 0; j < n; ++j) idx[j] = static_cast<int32_t>(ring_window_ ? (lo + j) % W_ : lo + j - raw_lo_);
    return {nullptr, ring_window_ ? &c_.window16 : &raw16_, idx.data()};
  }

  // The window step: query t's raw rows, max(0, t - W + 1) .. t (dense mode: the chunk's rows up to t).
  void fold_window(OnlineAttention& st, int64_t qoff, int64_t t, std::vector<int32_t>& idx) const {
    const int64_t lo = dense_ ? t0_ : std::max<int64_t>(0, t - W_ + 1);
    fold(st, qoff, raw_rows(lo, t - lo + 1, idx), t - lo + 1, dense_ ? lo : 0);
  }

  // The dense step: every raw row before the chunk, decoded once per block for all the queries.
  void fold_dense_history(std::vector<OnlineAttention>& st, const std::function<int64_t(int64_t)>& qoff) const {
    std::vector<float> rows;
    Bf16KvRows rows16;
    for (int64_t p0 = 0; p0 < t0_; p0 += kAttendBlock) {
      const int64_t n = std::min(kAttendBlock, t0_ - p0);
      rows.resize(bf16_ ? 0 : n * D_);
      decode_rows(n, c_.window, [&](int64_t r) { return p0 + r; }, rows.data(), rows16);
      pool_.parallel_for(static_cast<int64_t>(st.size()), 1, [&](int64_t b, int64_t e) {
        const Rows src{rows.data(), &rows16, row_range(0, n)};  // row_range is the calling thread's
        for (int64_t it = b; it < e; ++it) fold(st[it], qoff(it), src, n, p0);
      });
    }
  }

  // The CSA step: query i's picks in the order listed, kRowBlock at a time.
  void fold_picks(OnlineAttention& st, int64_t qoff, int64_t i, std::vector<float>& gathered, std::vector<int32_t>& idx) const {
    const std::vector<int32_t>& sel = selected_[i];
    for (size_t j0 = 0; j0 < sel.size(); j0 += kRowBlock) {
      const int64_t n = std::min<int64_t>(kRowBlock, static_cast<int64_t>(sel.size() - j0));
      Rows rows;
      if (bf16_) {
        idx.resize(n);
        for (int64_t j = 0; j < n; ++j) idx[j] = slot_[sel[j0 + j]];
        rows = {nullptr, &comp16_, idx.data()};
      } else {
        gathered.resize(n * D_);
        for (int64_t j = 0; j < n; ++j) std::copy_n(comp_.get() + slot_[sel[j0 + j]] * D_, D_, gathered.data() + j * D_);
        rows = {gathered.data()};
      }
      fold(st, qoff, rows, n, W_ + static_cast<int64_t>(j0));
    }
  }

  // The HCA step: compressed rows [p0, p0 + n), the same for every query that sees them.
  Rows hca_rows(int64_t p0, int64_t n) const {
    return bf16_ ? Rows{nullptr, &comp16_, row_range(p0, n)} : Rows{comp_.get() + p0 * D_};
  }

  // Every query's heads (or a share of them, with fewer queries than threads) as one item, each
  // folding its whole list in order. A chunk's lone query (V4Pass::attention's last_rows_only)
  // splits in two on any thread count, so its result does not depend on it.
  void per_query(const float* sink, float* out) {
    const int64_t share = Tq_ == 1 && T_ > 1 ? 2 : pool_.size();
    const int64_t splits = Tq_ >= share ? 1 : std::min<int64_t>(H_, share), hs = (H_ + splits - 1) / splits;
    const int64_t items = Tq_ * splits;
    std::vector<OnlineAttention> st(items);
    for (int64_t it = 0; it < items; ++it) st[it].reset(std::min(hs, H_ - it % splits * hs), D_);
    const auto qoff = [&](int64_t it) { return (it / splits) * H_ * D_ + (it % splits) * hs * D_; };
    const auto finish = [&](int64_t it) {
      const int64_t h0 = it % splits * hs;
      st[it].finish(sink + h0, out + (it / splits) * H_ * D_ + h0 * D_, D_);
    };
    if (dense_) fold_dense_history(st, qoff);
    const bool hca = !csa_ && n_rows_ > 0;
    pool_.parallel_for(items, 1, [&](int64_t b, int64_t e) {
      std::vector<float> gathered;
      std::vector<int32_t> idx;
      for (int64_t it = b; it < e; ++it) {
        const int64_t i = it / splits;
        fold_window(st[it], qoff(it), t0_ + q0_ + i, idx);
        if (csa_) fold_picks(st[it], qoff(it), i, gathered, idx);
        if (!hca) finish(it);
      }
    });
    if (!hca) return;
    // HCA rows block by block across all queries, each block read while it is still in L2.
    for (int64_t p0 = 0; p0 < n_rows_; p0 += kRowBlock) {
      pool_.parallel_for(items, 1, [&](int64_t b, int64_t e) {
        for (int64_t it = b; it < e; ++it) {
          const int64_t n = std::min(kRowBlock, n_comp_[it / splits] - p0);
          if (n > 0) fold(st[it], qoff(it), hca_rows(p0, n), n, W_ + p0);
        }
      });
    }
    pool_.parallel_for(items, 1, [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) finish(it);
    });
  }

  // An fp32 decode step: the window's and the compressed rows' blocks split over the threads
  // (attend_one), its CSA picks ascending, so comp as it is.
  void decode_split_k(const float* sink, float* out) const {
    const int64_t n_win = std::min(t0_ + 1, W_), lo = t0_ + 1 - n_win;
    attend_one(ctx_, H_, D_, n_win, n_rows_, sink, out, [&](OnlineAttention& st, bool compressed, int64_t r0, int64_t n) {
      thread_local std::vector<int32_t> idx;
      fold(st, 0, compressed ? hca_rows(r0, n) : raw_rows(lo + r0, n, idx), n, 0);
    });
  }

  // Official attention folds its list in blocks of this many entries (spec §7.3).
  static constexpr int64_t kListBlock = 64;
  // Compressed rows a fold takes at once, read for their scores and values while still in L2.
  static constexpr int64_t kRowBlock = 128;

  const KernelContext& ctx_;
  const LayerCache& c_;
  const int64_t H_, D_, W_, t0_, T_, q0_, Tq_, raw_lo_;
  const bool dense_, official_, bf16_, csa_, ring_window_;
  const float scale_;
  ThreadPool& pool_;
  const float* q_;
  const float* raw_;
  std::span<const int64_t> n_comp_;
  const std::vector<std::vector<int32_t>>& selected_;
  Scratch<uint16_t> q16_;
  Bf16KvRows raw16_, comp16_;
  std::unique_ptr<float[]> comp_;  // the compressed rows any query needs (FP32 path)
  int64_t n_rows_ = 0;
  std::vector<int32_t> slot_;  // CSA: compressed row -> its place in comp_ / comp16_, or -1
};

void V4Session::attend(const Layer& L, const LayerCache& c, const float* q, int64_t T, int64_t q0, const float* raw, int64_t raw_lo,
                       std::span<const int64_t> n_comp, const std::vector<std::vector<int32_t>>& selected, float* out) {
  const int64_t H = m().n_heads, D = m().head_dim, W = m().window, t0 = s_.pos, Tq = T - q0;
  const bool dense = o_.attention == AttentionMode::kDense, csa = !selected.empty();
  V4Attend(ctx_, c, m(), dense, official(), t0, T, q0, q, raw, raw_lo, n_comp, selected).run(L.sink.data(), out);
  for (int64_t i = 0; i < Tq; ++i) {
    const int64_t t = t0 + q0 + i;
    const int64_t total = (dense ? t + 1 : std::min(t + 1, W)) + (csa ? static_cast<int64_t>(selected[i].size()) : n_comp[i]);
    counters_.add(FlopCategory::kAttentionCore, 4 * H * D * total, total * c.window.format().row_bytes() + 2 * 4 * H * D);
  }
}

void V4Pass::moe(const Layer& L, const float* x, float* out) {
  const ModelConfig& M = m_;
  const int64_t T = T_;
  const std::vector<int32_t>& tokens = tokens_;
  const int64_t d = M.hidden, E = M.n_routed_experts, F = M.moe_intermediate;
  std::vector<float> logits(T * E);
  matmul(ctx_, FlopCategory::kRouter, x, T, L.gate, logits.data());
  RouteParams rp;
  rp.scoring = M.scoring_func == "sigmoid" ? RouterScoring::kSigmoid
               : M.scoring_func == "softmax" ? RouterScoring::kSoftmax
                                             : RouterScoring::kSqrtSoftplus;
  rp.top_k = static_cast<int>(M.experts_per_tok);
  rp.normalize = M.norm_topk_prob;
  rp.scale = M.routed_scaling;
  // Tokens per expert, with their routing weights.
  std::vector<std::vector<std::pair<int64_t, float>>> by_expert(E);
  for (int64_t i = 0; i < T; ++i) {
    Route r = L.spec.hash_routed
                  ? route_fixed(ctx_, logits.data() + i * E, E,
                                std::span<const int64_t>(L.tid2eid.data() + tokens[i] * M.experts_per_tok, M.experts_per_tok), rp)
                  : route_experts(ctx_, logits.data() + i * E, E, L.gate_bias.data(), rp);
    for (size_t k = 0; k < r.experts.size(); ++k) by_expert[r.experts[k]].push_back({i, r.weights[k]});
  }
  // The experts with rows, in ascending order, then the shared expert: their products run as two
  // groups (w1 and w3 of all, then w2 of all), so a decode step streams them all in one pass each.
  struct Active {
    const WeightMatrix *w1, *w2, *w3;
    std::vector<int64_t> rows;
    std::vector<float> weights;
    Scratch<float> xin, g, u, h, y;
  };
  std::vector<Active> active;
  for (int64_t e = 0; e < E; ++e) {
    if (by_expert[e].empty()) continue;
    Active& a = active.emplace_back(Active{&L.w1[e], &L.w2[e], &L.w3[e]});
    for (auto [r, wgt] : by_expert[e]) {
      a.rows.push_back(r);
      a.weights.push_back(wgt);
    }
  }
  if (M.n_shared_experts > 0) {
    Active& a = active.emplace_back(Active{&L.shared_w1, &L.shared_w2, &L.shared_w3});
    for (int64_t i = 0; i < T; ++i) a.rows.push_back(i);
    a.weights.assign(T, 1.0f);
  }
  std::vector<MatmulJob> jobs;
  for (Active& a : active) {
    const int64_t n = static_cast<int64_t>(a.rows.size());
    a.xin.resize(n * d);
    for (int64_t r = 0; r < n; ++r) std::copy_n(x + a.rows[r] * d, d, a.xin.data() + r * d);
    a.g.resize(n * F);
    a.u.resize(n * F);
    jobs.push_back(job(FlopCategory::kWeightGemm, a.xin.data(), n, *a.w1, a.g.data()));
    jobs.push_back(job(FlopCategory::kWeightGemm, a.xin.data(), n, *a.w3, a.u.data()));
  }
  matmul_group(ctx_, jobs);
  jobs.clear();
  const float limit = static_cast<float>(M.swiglu_limit);
  for (Active& a : active) {
    const int64_t n = static_cast<int64_t>(a.rows.size());
    a.h.resize(n * F);
    swiglu(ctx_, a.g.data(), a.u.data(), n * F, limit, a.h.data());
    for (int64_t r = 0; r < n; ++r)
      for (int64_t f = 0; f < F; ++f) a.h[r * F + f] *= a.weights[r];  // routing weight before w2 (spec §2.8 step 4)
    bf16(a.h.data(), n * F);
    a.y.resize(n * d);
    jobs.push_back(job(FlopCategory::kWeightGemm, a.h.data(), n, *a.w2, a.y.data()));
  }
  matmul_group(ctx_, jobs);
  std::vector<double> acc(T * d, 0.0);  // routed outputs summed in FP32+ in ascending expert order (§7.5)
  for (const Active& a : active)
    for (size_t r = 0; r < a.rows.size(); ++r)
      for (int64_t c = 0; c < d; ++c) acc[a.rows[r] * d + c] += a.y[r * d + c];
  for (int64_t i = 0; i < T * d; ++i) out[i] = static_cast<float>(acc[i]);
  bf16(out, T * d);
}

void V4Pass::run(std::vector<float>* all_logits) {
  const ModelConfig& M = m_;
  const int64_t T = T_, d = M.hidden, n = M.hc_mult, HD = M.n_heads * M.head_dim;
  const float eps = static_cast<float>(M.rms_eps);

  // Embedding, copied into all mHC streams.
  // The pass's buffers are written in full before they are read: not zeroed (a 2048-row chunk's
  // X and attn are 32 MB each).
  Scratch<float> X(T * n * d);
  std::vector<float> row(d);
  for (int64_t i = 0; i < T; ++i) {
    embedding_row(w_.embed, tokens_[i], row.data());
    bf16(row.data(), d);
    for (int64_t j = 0; j < n; ++j) std::copy(row.begin(), row.end(), X.begin() + (i * n + j) * d);
  }

  // Logits come from every row with all_logits (one segment), else from each segment's last row.
  // The last layer feeds nothing but them, so its queries and everything after run on those rows
  // alone; its other rows only write their cache entries.
  const std::vector<int64_t> out_rows = logit_rows(segs_, all_logits != nullptr);
  const int64_t rows_out = static_cast<int64_t>(out_rows.size());
  Scratch<float> u(T * d), xn(T * d), post(T * n), comb(T * n * n), attn(T * std::max(HD, d)), ffn(T * d);
  for (size_t l = 0; l < w_.layers.size(); ++l) {
    const Layer& L = w_.layers[l];
    const bool last_rows_only = this->last_rows_only(l, rows_out);  // then out_rows are the segments' last rows
    hc_pre(L.hc_attn_fn, L.hc_attn_base, L.hc_attn_scale, X.data(), u.data(), post.data(), comb.data());
    rms_norm(ctx_, u.data(), L.attn_norm.data(), eps, d, T_, xn.data());
    bf16(xn.data(), T_ * d);
    attention(L, l, xn.data(), attn.data(), last_rows_only);
    if (last_rows_only) {
      keep_rows(X.data(), n * d, out_rows);
      keep_rows(post.data(), n, out_rows);
      keep_rows(comb.data(), n * n, out_rows);
      keep_token_rows(out_rows);
    }
    hc_post(attn.data(), post.data(), comb.data(), X.data());
    hc_pre(L.hc_ffn_fn, L.hc_ffn_base, L.hc_ffn_scale, X.data(), u.data(), post.data(), comb.data());
    rms_norm(ctx_, u.data(), L.ffn_norm.data(), eps, d, T_, xn.data());
    bf16(xn.data(), T_ * d);
    moe(L, xn.data(), ffn.data());
    hc_post(ffn.data(), post.data(), comb.data(), X.data());
  }

  // Head collapse (spec §2.3.4), final norm, logits: X now holds the output rows first, in order.
  std::vector<float> Xo(X.begin(), X.begin() + rows_out * n * d), mix(rows_out * n), h(rows_out * d);
  matmul(ctx_, FlopCategory::kMhc, Xo.data(), rows_out, w_.hc_head_fn, mix.data());
  for (int64_t i = 0; i < rows_out; ++i) {
    const float* x = Xo.data() + i * n * d;
    double ss = 0;
    for (int64_t k = 0; k < n * d; ++k) ss += double(x[k]) * x[k];
    const float r = static_cast<float>(1.0 / std::sqrt(ss / (n * d) + M.rms_eps));
    float wj[8];  // hc_mult <= 8 (make_deepseek_v4_engine)
    for (int64_t j = 0; j < n; ++j)
      wj[j] = 1.0f / (1.0f + std::exp(-(mix[i * n + j] * r * w_.hc_head_scale[0] + w_.hc_head_base[j]))) +
              static_cast<float>(M.hc_eps);
    for (int64_t c = 0; c < d; ++c) {
      float s = 0;
      for (int64_t j = 0; j < n; ++j) s += wj[j] * x[j * d + c];
      h[i * d + c] = s;
    }
  }
  bf16(h.data(), rows_out * d);
  rms_norm(ctx_, h.data(), w_.norm.data(), eps, d, rows_out, h.data());
  bf16(h.data(), rows_out * d);
  pass_logits(ctx_, w_.head, h.data(), segs_, all_logits);
}

}  // namespace

std::unique_ptr<Engine> make_deepseek_v4_engine(const ModelConfig& m, const WeightStore& weights, const EngineOptions& opts) {
  if (m.hc_mult > 8) throw UsageError("hc_mult above 8 is not supported");
  if (m.index_head_dim != static_cast<int64_t>(kHadamardSize))
    throw UsageError(fmt::format("index_head_dim must be {} (the Hadamard size), got {}", kHadamardSize, m.index_head_dim));
  return std::make_unique<ModelEngine<V4Session, Weights>>(load_weights(m, weights), opts);
}

}  // namespace v4b
