// One typed description of every model family v4bench knows: DeepSeek-V4, DeepSeek-V3.2 / V3 and
// Llama-style dense GQA. Built from a Hugging Face config.json (or a built-in preset, which is the
// same JSON) and validated once, so nothing downstream re-checks shapes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace v4b {

enum class Family { kDeepSeekV4, kDeepSeekV32, kDeepSeekV3, kDenseGqa };

// What the attention of one layer keeps and reads.
enum class AttnKind {
  kSwa,     // V4 sliding window only
  kCsa,     // V4 window + 4x compressed rows chosen by the lightning indexer
  kHca,     // V4 window + all 128x compressed rows
  kMla,     // V3 multi-head latent attention, every token
  kMlaDsa,  // V3.2 MLA restricted to the DSA indexer's top-k tokens
  kGqa,     // grouped-query attention over raw K/V, every token
};

// Precision the weights of a GEMM are stored in; drives the FP8-equivalent FLOP weighting.
enum class WeightFormat { kBf16, kFp8, kFp4 };

std::string_view family_name(Family f);
std::string_view attn_kind_name(AttnKind k);

struct LayerSpec {
  AttnKind attn = AttnKind::kGqa;
  int compress_ratio = 0;  // 0, 4 or 128 (V4 only)
  bool moe = false;        // routed experts (else a dense FFN)
  bool hash_routed = false;
};

struct RopeScaling {
  std::string type;  // "" (none) or "yarn"
  double factor = 1;
  int64_t original_max_position = 0;
  double beta_fast = 32, beta_slow = 1;
  double mscale = 1, mscale_all_dim = 0;
  double low_freq_factor = 1, high_freq_factor = 4;  // "llama3" frequency scaling
};

struct ModelConfig {
  std::string name;        // preset name or checkpoint directory
  std::string model_type;  // as in config.json
  Family family = Family::kDenseGqa;

  int64_t hidden = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, vocab = 0;
  int64_t max_position = 0;
  double rms_eps = 1e-6, rope_theta = 10000;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 0, eos_token_id = 1;

  // Dense FFN (Llama, V3 first layers).
  int64_t intermediate = 0;
  // MoE.
  int64_t n_routed_experts = 0, n_shared_experts = 0, experts_per_tok = 0, moe_intermediate = 0;
  int64_t first_k_dense = 0, n_group = 1, topk_group = 1, n_hash_layers = 0;
  double routed_scaling = 1;
  std::string scoring_func;  // sqrtsoftplus (V4), sigmoid (V3), softmax
  bool norm_topk_prob = true;

  // Query low rank (V3, V4) and MLA (V3).
  int64_t q_lora_rank = 0, kv_lora_rank = 0, qk_nope_dim = 0, qk_rope_dim = 0, v_head_dim = 0;

  // V4 attention.
  int64_t o_groups = 0, o_lora_rank = 0, window = 0;
  double compress_rope_theta = 0, swiglu_limit = 0;
  int64_t hc_mult = 0, hc_sinkhorn_iters = 0;
  double hc_eps = 1e-6;
  int64_t n_mtp_layers = 0;
  std::vector<int> compress_ratios;  // as in config.json, including the MTP entries

  // Lightning indexer (V4 CSA, V3.2 DSA).
  int64_t index_heads = 0, index_head_dim = 0, index_topk = 0;

  // Storage formats of the weight families (checkpoint facts; V4 experts are FP4).
  WeightFormat dense_weights = WeightFormat::kBf16;
  WeightFormat expert_weights = WeightFormat::kBf16;

  std::vector<LayerSpec> layers;  // main trunk only; the MTP block is described by n_mtp_layers

  bool is_v4() const { return family == Family::kDeepSeekV4; }
  bool is_mla() const { return family == Family::kDeepSeekV3 || family == Family::kDeepSeekV32; }
  int64_t count_layers(AttnKind k) const;
};

// Parses a Hugging Face config.json object. `name` labels the model in errors and results.
// Throws UsageError naming the key and what was expected for anything missing, mistyped or
// inconsistent (e.g. compress_ratios of the wrong length, heads not dividing into groups).
ModelConfig parse_model_config(const nlohmann::json& config, const std::string& name);
// Reads DIR/config.json (or a path to a config.json file).
ModelConfig load_model_config(const std::string& path);

}  // namespace v4b
