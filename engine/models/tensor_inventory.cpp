#include "engine/models/tensor_inventory.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join

#include "engine/core/int_math.h"

namespace v4b {

namespace {

constexpr int64_t kFp8Block = 128;  // quantization_config.weight_block_size [128, 128]
constexpr int64_t kFp4Block = 32;   // MXFP4: one scale per 32 inputs

// Collects specs and knows how a projection of each storage format is laid out in this family.
class Inventory {
 public:
  explicit Inventory(const ModelConfig& m) : m_(m) {
    // V4 "FP8 mixed" Base checkpoints (FP8 experts) store float32 scales rather than E8M0 (spec §1.1,
    // from vLLM's loader; applied to every scale, since the note does not single out experts).
    v4_scale_ = m.expert_weights == WeightFormat::kFp8 ? DType::F32 : DType::F8_E8M0;
  }

  void add(std::string name, DType t, std::vector<int64_t> shape) {
    out_.push_back({std::move(name), t, std::move(shape)});
  }

  // Projection `p` with weight [out, in] stored as `f`, plus the scale tensor that format needs.
  void linear(const std::string& p, int64_t out, int64_t in, WeightFormat f) {
    switch (f) {
      case WeightFormat::kBf16:
        add(p + ".weight", DType::BF16, {out, in});
        return;
      case WeightFormat::kFp8:
        add(p + ".weight", DType::F8_E4M3, {out, in});
        if (m_.is_v4()) add(p + ".scale", v4_scale_, {ceil_div(out, kFp8Block), ceil_div(in, kFp8Block)});
        else add(p + ".weight_scale_inv", DType::F32, {ceil_div(out, kFp8Block), ceil_div(in, kFp8Block)});
        return;
      case WeightFormat::kFp4:
        // Only V4 routed experts are FP4: two E2M1 codes per I8 byte, one E8M0 scale per 32 inputs.
        add(p + ".weight", DType::I8, {out, ceil_div(in, 2)});
        add(p + ".scale", DType::F8_E8M0, {out, ceil_div(in, kFp4Block)});
        return;
    }
  }

  std::vector<TensorSpec> take() { return std::move(out_); }

 private:
  const ModelConfig& m_;
  DType v4_scale_;
  std::vector<TensorSpec> out_;
};

// ---------------------------------------------------------------------------------------------
// DeepSeek-V4 (spec §5.2–§5.4)

// Compressor of width `w` (512 main, D_I indexer): two lanes (coff 2) for ratio 4.
void v4_compressor(Inventory& inv, const ModelConfig& m, const std::string& p, int ratio, int64_t w) {
  const int64_t coff = ratio == 4 ? 2 : 1;
  inv.add(p + "wkv.weight", DType::BF16, {coff * w, m.hidden});
  inv.add(p + "wgate.weight", DType::BF16, {coff * w, m.hidden});
  inv.add(p + "ape", DType::F32, {ratio, coff * w});
  inv.add(p + "norm.weight", DType::BF16, {w});
}

void v4_hc_head(Inventory& inv, const ModelConfig& m, const std::string& p) {
  inv.add(p + "hc_head_fn", DType::F32, {m.hc_mult, m.hc_mult * m.hidden});
  inv.add(p + "hc_head_base", DType::F32, {m.hc_mult});
  inv.add(p + "hc_head_scale", DType::F32, {1});
}

// One block (`layers.{i}.` or `mtp.{j}.`): everything of §5.3 plus the §5.4 extras of its type.
void v4_block(Inventory& inv, const ModelConfig& m, const std::string& p, const LayerSpec& l) {
  const int64_t d = m.hidden, D = m.head_dim, H = m.n_heads, hc = m.hc_mult, mix = (2 + hc) * hc;
  const WeightFormat dense = m.dense_weights;
  inv.add(p + "attn_norm.weight", DType::BF16, {d});
  inv.add(p + "ffn_norm.weight", DType::BF16, {d});
  for (const char* site : {"attn", "ffn"}) {
    inv.add(fmt::format("{}hc_{}_fn", p, site), DType::F32, {mix, hc * d});
    inv.add(fmt::format("{}hc_{}_base", p, site), DType::F32, {mix});
    inv.add(fmt::format("{}hc_{}_scale", p, site), DType::F32, {3});
  }

  inv.add(p + "attn.attn_sink", DType::F32, {H});
  inv.linear(p + "attn.wq_a", m.q_lora_rank, d, dense);
  inv.add(p + "attn.q_norm.weight", DType::BF16, {m.q_lora_rank});
  inv.linear(p + "attn.wq_b", H * D, m.q_lora_rank, dense);
  inv.linear(p + "attn.wkv", D, d, dense);
  inv.add(p + "attn.kv_norm.weight", DType::BF16, {D});
  inv.linear(p + "attn.wo_a", m.o_groups * m.o_lora_rank, H * D / m.o_groups, dense);
  inv.linear(p + "attn.wo_b", d, m.o_groups * m.o_lora_rank, dense);
  if (l.attn == AttnKind::kCsa || l.attn == AttnKind::kHca) v4_compressor(inv, m, p + "attn.compressor.", l.compress_ratio, D);
  if (l.attn == AttnKind::kCsa) {
    inv.linear(p + "attn.indexer.wq_b", m.index_heads * m.index_head_dim, m.q_lora_rank, dense);
    inv.add(p + "attn.indexer.weights_proj.weight", DType::BF16, {m.index_heads, d});
    v4_compressor(inv, m, p + "attn.indexer.compressor.", l.compress_ratio, m.index_head_dim);
  }

  inv.add(p + "ffn.gate.weight", DType::BF16, {m.n_routed_experts, d});
  if (l.hash_routed) inv.add(p + "ffn.gate.tid2eid", DType::I64, {m.vocab, m.experts_per_tok});
  else inv.add(p + "ffn.gate.bias", DType::F32, {m.n_routed_experts});
  if (m.n_shared_experts > 0) {
    // One shared expert n_shared times as wide, as the reference builds it.
    const int64_t f = m.n_shared_experts * m.moe_intermediate;
    inv.linear(p + "ffn.shared_experts.w1", f, d, dense);
    inv.linear(p + "ffn.shared_experts.w2", d, f, dense);
    inv.linear(p + "ffn.shared_experts.w3", f, d, dense);
  }
  for (int64_t e = 0; e < m.n_routed_experts; ++e) {
    const std::string ep = fmt::format("{}ffn.experts.{}.", p, e);
    inv.linear(ep + "w1", m.moe_intermediate, d, m.expert_weights);
    inv.linear(ep + "w2", d, m.moe_intermediate, m.expert_weights);
    inv.linear(ep + "w3", m.moe_intermediate, d, m.expert_weights);
  }
}

void v4_tensors(Inventory& inv, const ModelConfig& m, bool include_mtp) {
  const int64_t d = m.hidden;
  inv.add("embed.weight", DType::BF16, {m.vocab, d});
  for (size_t i = 0; i < m.layers.size(); ++i) v4_block(inv, m, fmt::format("layers.{}.", i), m.layers[i]);
  inv.add("norm.weight", DType::BF16, {d});
  v4_hc_head(inv, m, "");
  if (!m.tie_word_embeddings) inv.add("head.weight", DType::BF16, {m.vocab, d});
  if (!include_mtp) return;
  for (int64_t j = 0; j < m.n_mtp_layers; ++j) {
    // A window-only, score-routed block plus its input projections, norms and head collapse; it
    // shares the trunk's embedding and head (spec §5.4).
    const std::string p = fmt::format("mtp.{}.", j);
    inv.linear(p + "e_proj", d, d, m.dense_weights);
    inv.linear(p + "h_proj", d, d, m.dense_weights);
    inv.add(p + "enorm.weight", DType::BF16, {d});
    inv.add(p + "hnorm.weight", DType::BF16, {d});
    v4_block(inv, m, p, LayerSpec{AttnKind::kSwa, 0, true, false});
    inv.add(p + "norm.weight", DType::BF16, {d});
    v4_hc_head(inv, m, p);
  }
}

// ---------------------------------------------------------------------------------------------
// DeepSeek-V3 / V3.1 / V3.2, Hugging Face layout (spec §5.5)
//
// Dtypes follow the tensor listings of the released checkpoints (DeepSeek-R1 for the V3
// architecture, DeepSeek-V3.2): every norm is BF16 in V3 but F32 in V3.2 (including the indexer's
// LayerNorm weight and bias); the router is BF16 with an F32 correction bias; the indexer's wq_b
// and wk are FP8 with scales while weights_proj is BF16; the MTP block's eh_proj is BF16 without a
// scale. V3.2-Exp was not checked separately and may differ in the norm dtype.

void mla_block(Inventory& inv, const ModelConfig& m, const std::string& p, const LayerSpec& l, DType norm) {
  const int64_t d = m.hidden, H = m.n_heads, c = m.kv_lora_rank, qk = m.qk_nope_dim + m.qk_rope_dim;
  const WeightFormat dense = m.dense_weights;
  inv.add(p + "input_layernorm.weight", norm, {d});
  inv.add(p + "post_attention_layernorm.weight", norm, {d});
  if (m.q_lora_rank > 0) {
    inv.linear(p + "self_attn.q_a_proj", m.q_lora_rank, d, dense);
    inv.add(p + "self_attn.q_a_layernorm.weight", norm, {m.q_lora_rank});
    inv.linear(p + "self_attn.q_b_proj", H * qk, m.q_lora_rank, dense);
  } else {
    inv.linear(p + "self_attn.q_proj", H * qk, d, dense);  // full-rank query (V2-Lite style configs)
  }
  inv.linear(p + "self_attn.kv_a_proj_with_mqa", c + m.qk_rope_dim, d, dense);
  inv.add(p + "self_attn.kv_a_layernorm.weight", norm, {c});
  inv.linear(p + "self_attn.kv_b_proj", H * (m.qk_nope_dim + m.v_head_dim), c, dense);
  inv.linear(p + "self_attn.o_proj", d, H * m.v_head_dim, dense);
  if (l.attn == AttnKind::kMlaDsa) {
    inv.linear(p + "self_attn.indexer.wq_b", m.index_heads * m.index_head_dim, m.q_lora_rank, dense);
    inv.linear(p + "self_attn.indexer.wk", m.index_head_dim, d, dense);
    inv.add(p + "self_attn.indexer.k_norm.weight", norm, {m.index_head_dim});
    inv.add(p + "self_attn.indexer.k_norm.bias", norm, {m.index_head_dim});
    inv.add(p + "self_attn.indexer.weights_proj.weight", DType::BF16, {m.index_heads, d});
  }
  if (!l.moe) {
    inv.linear(p + "mlp.gate_proj", m.intermediate, d, dense);
    inv.linear(p + "mlp.up_proj", m.intermediate, d, dense);
    inv.linear(p + "mlp.down_proj", d, m.intermediate, dense);
    return;
  }
  inv.add(p + "mlp.gate.weight", DType::BF16, {m.n_routed_experts, d});
  inv.add(p + "mlp.gate.e_score_correction_bias", DType::F32, {m.n_routed_experts});
  for (int64_t e = 0; e < m.n_routed_experts; ++e) {
    const std::string ep = fmt::format("{}mlp.experts.{}.", p, e);
    inv.linear(ep + "gate_proj", m.moe_intermediate, d, m.expert_weights);
    inv.linear(ep + "up_proj", m.moe_intermediate, d, m.expert_weights);
    inv.linear(ep + "down_proj", d, m.moe_intermediate, m.expert_weights);
  }
  if (m.n_shared_experts > 0) {
    const int64_t f = m.n_shared_experts * m.moe_intermediate;
    inv.linear(p + "mlp.shared_experts.gate_proj", f, d, dense);
    inv.linear(p + "mlp.shared_experts.up_proj", f, d, dense);
    inv.linear(p + "mlp.shared_experts.down_proj", d, f, dense);
  }
}

void mla_tensors(Inventory& inv, const ModelConfig& m, bool include_mtp) {
  const int64_t d = m.hidden;
  const DType norm = m.family == Family::kDeepSeekV32 ? DType::F32 : DType::BF16;
  inv.add("model.embed_tokens.weight", DType::BF16, {m.vocab, d});
  for (size_t i = 0; i < m.layers.size(); ++i) mla_block(inv, m, fmt::format("model.layers.{}.", i), m.layers[i], norm);
  inv.add("model.norm.weight", norm, {d});
  if (!m.tie_word_embeddings) inv.add("lm_head.weight", DType::BF16, {m.vocab, d});
  if (!include_mtp) return;
  for (int64_t j = 0; j < m.n_mtp_layers; ++j) {
    const std::string p = fmt::format("model.layers.{}.", m.n_layers + j);
    // embed_tokens and shared_head.head are stored again in the MTP layer although the model
    // shares them with the trunk (V3 README_WEIGHTS); they are real tensors of the files.
    inv.add(p + "embed_tokens.weight", DType::BF16, {m.vocab, d});
    inv.add(p + "enorm.weight", norm, {d});
    inv.add(p + "hnorm.weight", norm, {d});
    inv.add(p + "eh_proj.weight", DType::BF16, {d, 2 * d});
    mla_block(inv, m, p, LayerSpec{m.layers.back().attn, 0, true, false}, norm);
    inv.add(p + "shared_head.norm.weight", norm, {d});
    inv.add(p + "shared_head.head.weight", DType::BF16, {m.vocab, d});
  }
}

// ---------------------------------------------------------------------------------------------
// Dense GQA (Llama / Mistral / Qwen2)

void gqa_tensors(Inventory& inv, const ModelConfig& m) {
  const int64_t d = m.hidden, hd = m.head_dim;
  const WeightFormat f = m.dense_weights;
  inv.add("model.embed_tokens.weight", DType::BF16, {m.vocab, d});
  for (int64_t i = 0; i < m.n_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    inv.add(p + "input_layernorm.weight", DType::BF16, {d});
    inv.linear(p + "self_attn.q_proj", m.n_heads * hd, d, f);
    inv.linear(p + "self_attn.k_proj", m.n_kv_heads * hd, d, f);
    inv.linear(p + "self_attn.v_proj", m.n_kv_heads * hd, d, f);
    if (m.model_type == "qwen2") {  // Qwen2 has biases on q, k and v (and nowhere else)
      inv.add(p + "self_attn.q_proj.bias", DType::BF16, {m.n_heads * hd});
      inv.add(p + "self_attn.k_proj.bias", DType::BF16, {m.n_kv_heads * hd});
      inv.add(p + "self_attn.v_proj.bias", DType::BF16, {m.n_kv_heads * hd});
    }
    inv.linear(p + "self_attn.o_proj", d, m.n_heads * hd, f);
    inv.add(p + "post_attention_layernorm.weight", DType::BF16, {d});
    inv.linear(p + "mlp.gate_proj", m.intermediate, d, f);
    inv.linear(p + "mlp.up_proj", m.intermediate, d, f);
    inv.linear(p + "mlp.down_proj", d, m.intermediate, f);
  }
  inv.add("model.norm.weight", DType::BF16, {d});
  if (!m.tie_word_embeddings) inv.add("lm_head.weight", DType::BF16, {m.vocab, d});
}

}  // namespace

std::vector<TensorSpec> expected_tensors(const ModelConfig& m, bool include_mtp) {
  Inventory inv(m);
  if (m.is_v4()) v4_tensors(inv, m, include_mtp);
  else if (m.is_mla()) mla_tensors(inv, m, include_mtp);
  else gqa_tensors(inv, m);
  return inv.take();
}

bool is_scale_tensor(std::string_view name) { return name.ends_with(".scale") || name.ends_with(".weight_scale_inv"); }

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t v : shape) n *= v;
  return n;
}

int64_t logical_params(const TensorSpec& t) { return numel(t.shape) * (t.dtype == DType::I8 ? 2 : 1); }

std::string shape_string(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

}  // namespace v4b
