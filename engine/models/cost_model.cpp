#include "engine/models/cost_model.h"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "common/errors.h"
#include "engine/core/int_math.h"

namespace v4b {

std::string_view kv_format_name(KvFormat f) { return f == KvFormat::kFp8 ? "fp8" : "bf16"; }

KvFormat parse_kv_format(std::string_view text) {
  if (text == "fp8") return KvFormat::kFp8;
  if (text == "bf16") return KvFormat::kBf16;
  throw UsageError(fmt::format("invalid KV storage format '{}': expected fp8 or bf16", text));
}

std::string_view kv_kind_name(KvKind k) {
  switch (k) {
    case KvKind::kWindow: return "window";
    case KvKind::kCompressedCsa: return "compressed_csa";
    case KvKind::kCompressedHca: return "compressed_hca";
    case KvKind::kIndexKeys: return "index_keys";
    case KvKind::kMlaLatent: return "mla_latent";
    case KvKind::kGqaKv: return "gqa_kv";
    case KvKind::kCompressorState: return "compressor_state";
    case KvKind::kCount: break;
  }
  return "?";
}

int64_t KvBytes::total() const { return std::accumulate(by_kind.begin(), by_kind.end(), int64_t{0}); }

int64_t DecodeFlops::raw() const { return std::accumulate(by_category.begin(), by_category.end(), int64_t{0}); }

double DecodeFlops::fp8eq() const {
  double sum = 0;
  for (int i = 0; i < kNumFlopCategories; ++i) sum += fp8eq_weight[i] * static_cast<double>(by_category[i]);
  return sum;
}

namespace {

constexpr int64_t kFp32 = 4;

// V4 compressor partial-window state per layer: kv and score buffers of (coff*ratio) rows by
// (coff*width) channels in FP32, coff = 2 for the overlapping CSA lanes (spec §2.5, §3.1).
int64_t compressor_state_bytes(int ratio, int64_t width) {
  const int64_t coff = ratio == 4 ? 2 : 1;
  return 2 * coff * ratio * coff * width * kFp32;
}

}  // namespace

int64_t kv_row_bytes(const ModelConfig& m, KvKind kind, KvFormat f) {
  const bool fp8 = f == KvFormat::kFp8;
  switch (kind) {
    case KvKind::kWindow:
    case KvKind::kCompressedCsa:
    case KvKind::kCompressedHca: {
      if (!m.is_v4()) return 0;
      const int64_t nope = m.head_dim - m.qk_rope_dim;
      // E4M3 nope dims + one UE8M0 scale per 64, padded to 2 bytes, then the BF16 rope dims.
      return fp8 ? (nope + ceil_div(nope, 64) + 1) / 2 * 2 + 2 * m.qk_rope_dim : 2 * m.head_dim;
    }
    case KvKind::kIndexKeys:
      if (m.is_v4()) return fp8 ? m.index_head_dim / 2 + ceil_div(m.index_head_dim, 32) : 2 * m.index_head_dim;
      if (m.family == Family::kDeepSeekV32) return fp8 ? m.index_head_dim + kFp32 : 2 * m.index_head_dim;
      return 0;
    case KvKind::kMlaLatent:
      if (!m.is_mla()) return 0;
      // E4M3 latent + one FP32 scale per 128, then the BF16 rope key (FlashMLA's FP8 layout).
      return fp8 ? m.kv_lora_rank + kFp32 * ceil_div(m.kv_lora_rank, 128) + 2 * m.qk_rope_dim
                 : 2 * (m.kv_lora_rank + m.qk_rope_dim);
    case KvKind::kGqaKv:
      if (m.family != Family::kDenseGqa) return 0;
      return 2 * m.n_kv_heads * m.head_dim * (fp8 ? 1 : 2);
    case KvKind::kCompressorState:
    case KvKind::kCount: break;
  }
  return 0;
}

KvBytes kv_bytes(const ModelConfig& m, int64_t ctx, KvFormat f) {
  KvBytes b;
  for (const LayerSpec& l : m.layers) {
    switch (l.attn) {
      case AttnKind::kSwa:
      case AttnKind::kCsa:
      case AttnKind::kHca:
        b[KvKind::kWindow] += std::min(ctx, m.window) * kv_row_bytes(m, KvKind::kWindow, f);
        if (l.attn == AttnKind::kCsa) {
          const int64_t rows = ctx / l.compress_ratio;
          b[KvKind::kCompressedCsa] += rows * kv_row_bytes(m, KvKind::kCompressedCsa, f);
          b[KvKind::kIndexKeys] += rows * kv_row_bytes(m, KvKind::kIndexKeys, f);
          b[KvKind::kCompressorState] += compressor_state_bytes(l.compress_ratio, m.head_dim) +
                                         compressor_state_bytes(l.compress_ratio, m.index_head_dim);
        } else if (l.attn == AttnKind::kHca) {
          b[KvKind::kCompressedHca] += ctx / l.compress_ratio * kv_row_bytes(m, KvKind::kCompressedHca, f);
          b[KvKind::kCompressorState] += compressor_state_bytes(l.compress_ratio, m.head_dim);
        }
        break;
      case AttnKind::kMlaDsa:
        b[KvKind::kIndexKeys] += ctx * kv_row_bytes(m, KvKind::kIndexKeys, f);
        [[fallthrough]];
      case AttnKind::kMla:
        b[KvKind::kMlaLatent] += ctx * kv_row_bytes(m, KvKind::kMlaLatent, f);
        break;
      case AttnKind::kGqa:
        b[KvKind::kGqaKv] += ctx * kv_row_bytes(m, KvKind::kGqaKv, f);
        break;
    }
  }
  return b;
}

namespace {

double gemm_weight(WeightFormat f) { return f == WeightFormat::kBf16 ? 2.0 : 1.0; }

// FLOPs of the SwiGLU FFNs that one token runs through in a layer.
int64_t ffn_flops(const ModelConfig& m, const LayerSpec& l) {
  if (!l.moe) return 6 * m.hidden * m.intermediate;
  return (m.experts_per_tok + m.n_shared_experts) * 6 * m.hidden * m.moe_intermediate;
}

void v4_layer_flops(const ModelConfig& m, const LayerSpec& l, int64_t ctx, DecodeFlops& f) {
  const int64_t d = m.hidden, D = m.head_dim, H = m.n_heads;
  int64_t gemm = 2 * d * m.q_lora_rank + 2 * m.q_lora_rank * H * D  // query down / up
                 + 2 * d * D                                        // shared KV
                 + 2 * H * D * m.o_lora_rank                        // grouped wo_a
                 + 2 * m.o_groups * m.o_lora_rank * d;              // wo_b
  int64_t n_kv = std::min(ctx, m.window);
  if (l.attn == AttnKind::kCsa) {
    const int64_t rows = ctx / l.compress_ratio;
    gemm += 2 * m.q_lora_rank * m.index_heads * m.index_head_dim;  // indexer queries
    n_kv += std::min(m.index_topk, rows);
    f[FlopCategory::kIndexerScore] += 2 * m.index_heads * m.index_head_dim * rows;
    // Main compressor (wkv + wgate, two lanes) and the indexer's own compressor.
    f[FlopCategory::kCompressor] += 2 * 2 * (2 * D) * d + 2 * 2 * (2 * m.index_head_dim) * d;
    f[FlopCategory::kSmallMatmul] += 2 * d * m.index_heads;  // indexer head weights
  } else if (l.attn == AttnKind::kHca) {
    n_kv += ctx / l.compress_ratio;
    f[FlopCategory::kCompressor] += 2 * 2 * D * d;
  }
  f[FlopCategory::kWeightGemm] += gemm + ffn_flops(m, l);
  f[FlopCategory::kAttentionCore] += 4 * H * D * n_kv;  // QK and PV share the 512-d vector
  f[FlopCategory::kRouter] += 2 * d * m.n_routed_experts;
  const int64_t mix = (2 + m.hc_mult) * m.hc_mult;
  f[FlopCategory::kMhc] += 2 * (2 * mix * m.hc_mult * d);  // attention and FFN sites
}

void mla_layer_flops(const ModelConfig& m, const LayerSpec& l, int64_t ctx, DecodeFlops& f) {
  const int64_t d = m.hidden, H = m.n_heads, qk = m.qk_nope_dim + m.qk_rope_dim, c = m.kv_lora_rank;
  int64_t gemm = m.q_lora_rank ? 2 * d * m.q_lora_rank + 2 * m.q_lora_rank * H * qk : 2 * d * H * qk;
  gemm += 2 * d * (c + m.qk_rope_dim)   // latent + rope key
          + 2 * H * m.qk_nope_dim * c   // absorb W_UK into the query
          + 2 * H * c * m.v_head_dim    // W_UV on the attended latent
          + 2 * H * m.v_head_dim * d;   // output projection
  int64_t attended = ctx;
  if (l.attn == AttnKind::kMlaDsa) {
    gemm += 2 * m.q_lora_rank * m.index_heads * m.index_head_dim + 2 * d * m.index_head_dim;
    f[FlopCategory::kIndexerScore] += 2 * m.index_heads * m.index_head_dim * ctx;
    f[FlopCategory::kSmallMatmul] += 2 * d * m.index_heads;
    attended = std::min(ctx, m.index_topk);
  }
  f[FlopCategory::kWeightGemm] += gemm + ffn_flops(m, l);
  f[FlopCategory::kAttentionCore] += 2 * H * (c + m.qk_rope_dim) * attended + 2 * H * c * attended;
  if (l.moe) f[FlopCategory::kRouter] += 2 * d * m.n_routed_experts;
}

void gqa_layer_flops(const ModelConfig& m, const LayerSpec& l, int64_t ctx, DecodeFlops& f) {
  const int64_t d = m.hidden, hd = m.head_dim;
  f[FlopCategory::kWeightGemm] += 2 * d * m.n_heads * hd + 2 * 2 * d * m.n_kv_heads * hd + 2 * m.n_heads * hd * d + ffn_flops(m, l);
  f[FlopCategory::kAttentionCore] += 4 * m.n_heads * hd * ctx;
}

}  // namespace

DecodeFlops decode_flops(const ModelConfig& m, int64_t ctx) {
  DecodeFlops f;
  for (const LayerSpec& l : m.layers) {
    if (m.is_v4()) v4_layer_flops(m, l, ctx, f);
    else if (m.is_mla()) mla_layer_flops(m, l, ctx, f);
    else gqa_layer_flops(m, l, ctx, f);
  }
  f[FlopCategory::kWeightGemm] += 2 * m.hidden * m.vocab;  // LM head
  if (m.is_v4()) f[FlopCategory::kMhc] += 2 * m.hc_mult * m.hc_mult * m.hidden;  // head collapse

  auto& w = f.fp8eq_weight;
  w.fill(2.0);  // BF16 / FP32 work
  w[static_cast<int>(FlopCategory::kWeightGemm)] = gemm_weight(m.dense_weights);
  // V4 scores FP4-QDQ'd queries against FP4 keys; V3.2's indexer runs in FP8.
  w[static_cast<int>(FlopCategory::kIndexerScore)] = m.is_v4() ? 0.5 : 1.0;
  return f;
}

namespace {

int64_t moe_params(const ModelConfig& m, int64_t n_experts) {
  return n_experts * 3 * m.hidden * m.moe_intermediate;
}

// One V4 block as stored (spec §5.3–5.4), without its routed experts.
int64_t v4_block_params(const ModelConfig& m, const LayerSpec& l) {
  const int64_t d = m.hidden, D = m.head_dim, H = m.n_heads, mix = (2 + m.hc_mult) * m.hc_mult;
  int64_t p = 2 * d                                       // attn_norm, ffn_norm
              + 2 * (mix * m.hc_mult * d + mix + 3)       // hc_attn_*, hc_ffn_*
              + H                                         // attn_sink
              + d * m.q_lora_rank + m.q_lora_rank         // wq_a, q_norm
              + m.q_lora_rank * H * D                     // wq_b
              + d * D + D                                 // wkv, kv_norm
              + m.o_groups * m.o_lora_rank * (H * D / m.o_groups)  // wo_a
              + d * m.o_groups * m.o_lora_rank            // wo_b
              + m.n_routed_experts * d                    // gate
              + (l.hash_routed ? 0 : m.n_routed_experts)  // gate bias
              + moe_params(m, m.n_shared_experts);
  if (l.attn == AttnKind::kCsa) {
    const int64_t ID = m.index_head_dim;
    p += 2 * (2 * D) * d + 4 * (2 * D) + D                        // compressor wkv, wgate, ape, norm
         + m.index_heads * ID * m.q_lora_rank + m.index_heads * d  // indexer wq_b, weights_proj
         + 2 * (2 * ID) * d + 4 * (2 * ID) + ID;                   // indexer compressor
  } else if (l.attn == AttnKind::kHca) {
    p += 2 * D * d + l.compress_ratio * D + D;
  }
  return p;
}

int64_t mla_block_params(const ModelConfig& m, const LayerSpec& l) {
  const int64_t d = m.hidden, H = m.n_heads, qk = m.qk_nope_dim + m.qk_rope_dim, c = m.kv_lora_rank;
  int64_t p = 2 * d;
  p += m.q_lora_rank ? d * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * H * qk : d * H * qk;
  p += d * (c + m.qk_rope_dim) + c + c * H * (m.qk_nope_dim + m.v_head_dim) + H * m.v_head_dim * d;
  if (l.attn == AttnKind::kMlaDsa)
    p += m.q_lora_rank * m.index_heads * m.index_head_dim + d * m.index_head_dim + 2 * m.index_head_dim +
         d * m.index_heads;
  if (l.moe) p += m.n_routed_experts * d + m.n_routed_experts + moe_params(m, m.n_shared_experts);
  else p += 3 * d * m.intermediate;
  return p;
}

int64_t gqa_block_params(const ModelConfig& m) {
  const int64_t d = m.hidden, hd = m.head_dim;
  const int64_t qkv_bias = m.model_type == "qwen2" ? (m.n_heads + 2 * m.n_kv_heads) * hd : 0;  // Qwen2 biases q, k, v
  return 2 * d + d * m.n_heads * hd + 2 * d * m.n_kv_heads * hd + m.n_heads * hd * d + 3 * d * m.intermediate + qkv_bias;
}

int64_t block_params(const ModelConfig& m, const LayerSpec& l) {
  if (m.is_v4()) return v4_block_params(m, l);
  if (m.is_mla()) return mla_block_params(m, l);
  return gqa_block_params(m);
}

}  // namespace

ParamCounts param_counts(const ModelConfig& m) {
  ParamCounts p;
  const int64_t d = m.hidden;
  p.embedding = m.vocab * d;
  const int64_t head = m.tie_word_embeddings ? 0 : m.vocab * d;
  const int64_t hc_head = m.is_v4() ? m.hc_mult * m.hc_mult * d + m.hc_mult + 1 : 0;
  p.total = p.embedding + head + d /* final norm */ + hc_head;
  p.active = head + d + hc_head;
  for (const LayerSpec& l : m.layers) {
    const int64_t shared = block_params(m, l);
    p.total += shared + (l.moe ? moe_params(m, m.n_routed_experts) : 0);
    p.active += shared + (l.moe ? moe_params(m, m.experts_per_tok) : 0);
  }
  // MTP block: a window-only (V4) or MLA (V3) layer with score routing and the full expert set,
  // plus the embedding/hidden projections and norms; embedding and head are shared with the trunk.
  for (int64_t i = 0; i < m.n_mtp_layers; ++i) {
    const LayerSpec l{m.is_v4() ? AttnKind::kSwa : m.layers.back().attn, 0, true, false};
    p.mtp += block_params(m, l) + moe_params(m, m.n_routed_experts) + 2 * d * d + 3 * d + hc_head;
  }
  return p;
}

}  // namespace v4b
