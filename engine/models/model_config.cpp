#include "engine/models/model_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "common/errors.h"

namespace v4b {

std::string_view family_name(Family f) {
  switch (f) {
    case Family::kDeepSeekV4: return "deepseek_v4";
    case Family::kDeepSeekV32: return "deepseek_v32";
    case Family::kDeepSeekV3: return "deepseek_v3";
    case Family::kDenseGqa: return "dense_gqa";
  }
  return "?";
}

std::string_view attn_kind_name(AttnKind k) {
  switch (k) {
    case AttnKind::kSwa: return "swa";
    case AttnKind::kCsa: return "csa";
    case AttnKind::kHca: return "hca";
    case AttnKind::kMla: return "mla";
    case AttnKind::kMlaDsa: return "mla_dsa";
    case AttnKind::kGqa: return "gqa";
  }
  return "?";
}

int64_t ModelConfig::count_layers(AttnKind k) const {
  return std::count_if(layers.begin(), layers.end(), [k](const LayerSpec& l) { return l.attn == k; });
}

namespace {

// Typed access to config.json keys; every failure names the model, the key and what was expected.
class Reader {
 public:
  Reader(const nlohmann::json& j, const std::string& name) : j_(j), name_(name) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw UsageError(fmt::format("config.json of '{}': {}", name_, what));
  }
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  int64_t integer(const char* key) const {
    if (!has(key)) fail(fmt::format("missing required key '{}'", key));
    return as_int(j_[key], key);
  }
  int64_t integer(const char* key, int64_t fallback) const { return has(key) ? as_int(j_[key], key) : fallback; }
  int64_t positive(const char* key) const {
    int64_t v = integer(key);
    if (v <= 0) fail(fmt::format("'{}' must be positive, got {}", key, v));
    return v;
  }
  int64_t positive(const char* key, int64_t fallback) const {
    int64_t v = integer(key, fallback);
    if (v <= 0) fail(fmt::format("'{}' must be positive, got {}", key, v));
    return v;
  }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_number()) fail(fmt::format("'{}' must be a number, got {}", key, j_[key].dump()));
    return j_[key].get<double>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_string()) fail(fmt::format("'{}' must be a string, got {}", key, j_[key].dump()));
    return j_[key].get<std::string>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_boolean()) fail(fmt::format("'{}' must be true or false, got {}", key, j_[key].dump()));
    return j_[key].get<bool>();
  }
  const nlohmann::json& raw(const char* key) const { return j_[key]; }

  int64_t as_int(const nlohmann::json& v, const std::string& key) const {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())))
      return static_cast<int64_t>(v.get<double>());
    fail(fmt::format("'{}' must be an integer, got {}", key, v.dump()));
  }

 private:
  const nlohmann::json& j_;
  const std::string& name_;
};

void read_rope_scaling(const Reader& r, ModelConfig& c) {
  if (!r.has("rope_scaling")) return;
  const auto& rs = r.raw("rope_scaling");
  if (!rs.is_object()) r.fail("'rope_scaling' must be an object or null");
  Reader s(rs, c.name);
  c.rope_scaling.type = s.string("type", s.string("rope_type", ""));
  c.rope_scaling.factor = s.number("factor", 1);
  c.rope_scaling.original_max_position = s.integer("original_max_position_embeddings", 0);
  c.rope_scaling.beta_fast = s.number("beta_fast", 32);
  c.rope_scaling.beta_slow = s.number("beta_slow", 1);
  c.rope_scaling.mscale = s.number("mscale", 1);
  c.rope_scaling.mscale_all_dim = s.number("mscale_all_dim", 0);
  c.rope_scaling.low_freq_factor = s.number("low_freq_factor", 1);
  c.rope_scaling.high_freq_factor = s.number("high_freq_factor", 4);
  if (c.rope_scaling.factor <= 0) r.fail("'rope_scaling.factor' must be positive");
}

void read_common(const Reader& r, ModelConfig& c) {
  c.hidden = r.positive("hidden_size");
  c.n_layers = r.positive("num_hidden_layers");
  c.n_heads = r.positive("num_attention_heads");
  c.n_kv_heads = r.positive("num_key_value_heads", c.n_heads);
  c.vocab = r.positive("vocab_size");
  c.max_position = r.positive("max_position_embeddings");
  c.rms_eps = r.number("rms_norm_eps", 1e-6);
  c.rope_theta = r.number("rope_theta", 10000);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.bos_token_id = r.integer("bos_token_id", 0);
  c.eos_token_id = r.has("eos_token_id") && r.raw("eos_token_id").is_array() ? 1 : r.integer("eos_token_id", 1);
  read_rope_scaling(r, c);
  if (r.has("quantization_config")) {
    const auto& q = r.raw("quantization_config");
    if (!q.is_object()) r.fail("'quantization_config' must be an object");
    std::string method = Reader(q, c.name).string("quant_method", "");
    if (method != "fp8") r.fail(fmt::format("unsupported quantization_config.quant_method '{}' (expected fp8)", method));
    c.dense_weights = WeightFormat::kFp8;
  }
  c.expert_weights = c.dense_weights;
}

void read_moe(const Reader& r, ModelConfig& c) {
  c.n_routed_experts = r.positive("n_routed_experts");
  c.n_shared_experts = r.integer("n_shared_experts", 0);
  c.experts_per_tok = r.positive("num_experts_per_tok");
  c.moe_intermediate = r.positive("moe_intermediate_size");
  c.routed_scaling = r.number("routed_scaling_factor", 1);
  c.norm_topk_prob = r.boolean("norm_topk_prob", true);
  c.n_group = r.positive("n_group", 1);
  c.topk_group = r.positive("topk_group", 1);
  if (c.n_shared_experts < 0) r.fail("'n_shared_experts' must not be negative");
  if (c.experts_per_tok > c.n_routed_experts)
    r.fail(fmt::format("num_experts_per_tok ({}) exceeds n_routed_experts ({})", c.experts_per_tok, c.n_routed_experts));
  if (c.n_routed_experts % c.n_group != 0)
    r.fail(fmt::format("n_routed_experts ({}) is not a multiple of n_group ({})", c.n_routed_experts, c.n_group));
  if (c.topk_group > c.n_group) r.fail(fmt::format("topk_group ({}) exceeds n_group ({})", c.topk_group, c.n_group));
}

void read_v4(const Reader& r, ModelConfig& c) {
  c.family = Family::kDeepSeekV4;
  read_moe(r, c);
  c.head_dim = r.positive("head_dim");
  c.qk_rope_dim = r.positive("qk_rope_head_dim");
  c.q_lora_rank = r.positive("q_lora_rank");
  c.o_groups = r.positive("o_groups");
  c.o_lora_rank = r.positive("o_lora_rank");
  c.window = r.positive("sliding_window");
  c.compress_rope_theta = r.number("compress_rope_theta", c.rope_theta);
  c.swiglu_limit = r.number("swiglu_limit", 0);
  c.hc_mult = r.positive("hc_mult");
  c.hc_sinkhorn_iters = r.positive("hc_sinkhorn_iters");
  c.hc_eps = r.number("hc_eps", 1e-6);
  c.n_hash_layers = r.integer("num_hash_layers", 0);
  c.n_mtp_layers = r.integer("num_nextn_predict_layers", 0);
  c.index_heads = r.positive("index_n_heads");
  c.index_head_dim = r.positive("index_head_dim");
  c.index_topk = r.positive("index_topk");
  c.scoring_func = r.string("scoring_func", "sqrtsoftplus");
  if (c.n_kv_heads != 1) r.fail(fmt::format("deepseek_v4 uses one shared KV head; num_key_value_heads is {}", c.n_kv_heads));
  if (c.qk_rope_dim >= c.head_dim || c.qk_rope_dim % 2)
    r.fail(fmt::format("qk_rope_head_dim ({}) must be even and smaller than head_dim ({})", c.qk_rope_dim, c.head_dim));
  if (c.n_heads % c.o_groups)
    r.fail(fmt::format("num_attention_heads ({}) is not a multiple of o_groups ({})", c.n_heads, c.o_groups));
  if (c.n_hash_layers < 0 || c.n_hash_layers > c.n_layers)
    r.fail(fmt::format("num_hash_layers ({}) must be between 0 and num_hidden_layers ({})", c.n_hash_layers, c.n_layers));
  if (c.n_mtp_layers < 0) r.fail("'num_nextn_predict_layers' must not be negative");
  // Experts are FP4 in the released instruct checkpoints even where the key is missing (spec §6.2.4).
  if (c.dense_weights == WeightFormat::kFp8)
    c.expert_weights = r.string("expert_dtype", "fp4") == "fp8" ? WeightFormat::kFp8 : WeightFormat::kFp4;

  if (!r.has("compress_ratios") || !r.raw("compress_ratios").is_array()) r.fail("missing required list 'compress_ratios'");
  for (const auto& v : r.raw("compress_ratios")) c.compress_ratios.push_back(static_cast<int>(r.as_int(v, "compress_ratios")));
  const auto n = static_cast<int64_t>(c.compress_ratios.size());
  if (n != c.n_layers && n != c.n_layers + c.n_mtp_layers)
    r.fail(fmt::format("compress_ratios has {} entries; expected num_hidden_layers ({}) or that plus num_nextn_predict_layers ({})",
                       n, c.n_layers, c.n_layers + c.n_mtp_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerSpec l;
    l.compress_ratio = c.compress_ratios[i];
    switch (l.compress_ratio) {
      case 0: l.attn = AttnKind::kSwa; break;
      case 4: l.attn = AttnKind::kCsa; break;
      case 128: l.attn = AttnKind::kHca; break;
      default: r.fail(fmt::format("compress_ratios[{}] is {}; expected 0 (window), 4 (CSA) or 128 (HCA)", i, l.compress_ratio));
    }
    l.moe = true;
    l.hash_routed = i < c.n_hash_layers;
    c.layers.push_back(l);
  }
}

void read_deepseek_v3(const Reader& r, ModelConfig& c, bool dsa) {
  c.family = dsa ? Family::kDeepSeekV32 : Family::kDeepSeekV3;
  read_moe(r, c);
  c.q_lora_rank = r.integer("q_lora_rank", 0);  // 0 means a plain (full-rank) query projection
  c.kv_lora_rank = r.positive("kv_lora_rank");
  c.qk_nope_dim = r.positive("qk_nope_head_dim");
  c.qk_rope_dim = r.positive("qk_rope_head_dim");
  c.v_head_dim = r.positive("v_head_dim");
  c.head_dim = c.qk_nope_dim + c.qk_rope_dim;
  c.intermediate = r.positive("intermediate_size");
  c.first_k_dense = r.integer("first_k_dense_replace", 0);
  c.n_mtp_layers = r.integer("num_nextn_predict_layers", 0);
  c.scoring_func = r.string("scoring_func", "sigmoid");
  if (c.first_k_dense < 0 || c.first_k_dense > c.n_layers)
    r.fail(fmt::format("first_k_dense_replace ({}) must be between 0 and num_hidden_layers ({})", c.first_k_dense, c.n_layers));
  if (dsa) {
    c.index_heads = r.positive("index_n_heads");
    c.index_head_dim = r.positive("index_head_dim");
    c.index_topk = r.positive("index_topk");
  }
  for (int64_t i = 0; i < c.n_layers; ++i)
    c.layers.push_back({dsa ? AttnKind::kMlaDsa : AttnKind::kMla, 0, i >= c.first_k_dense, false});
}

void read_dense_gqa(const Reader& r, ModelConfig& c) {
  c.family = Family::kDenseGqa;
  c.intermediate = r.positive("intermediate_size");
  if (c.hidden % c.n_heads && !r.has("head_dim"))
    r.fail(fmt::format("hidden_size ({}) is not a multiple of num_attention_heads ({}) and head_dim is not given", c.hidden, c.n_heads));
  c.head_dim = r.positive("head_dim", c.hidden / c.n_heads);
  if (c.n_heads % c.n_kv_heads)
    r.fail(fmt::format("num_attention_heads ({}) is not a multiple of num_key_value_heads ({})", c.n_heads, c.n_kv_heads));
  for (int64_t i = 0; i < c.n_layers; ++i) c.layers.push_back({AttnKind::kGqa, 0, false, false});
}

}  // namespace

ModelConfig parse_model_config(const nlohmann::json& config, const std::string& name) {
  ModelConfig c;
  c.name = name;
  if (!config.is_object()) throw UsageError(fmt::format("config.json of '{}': expected a JSON object", name));
  Reader r(config, c.name);
  c.model_type = r.string("model_type", "");
  read_common(r, c);
  if (c.model_type == "deepseek_v4") {
    read_v4(r, c);
  } else if (c.model_type == "deepseek_v32" || (c.model_type == "deepseek_v3" && r.has("index_topk"))) {
    read_deepseek_v3(r, c, /*dsa=*/true);
  } else if (c.model_type == "deepseek_v3") {
    read_deepseek_v3(r, c, /*dsa=*/false);
  } else if (c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2") {
    read_dense_gqa(r, c);
  } else {
    r.fail(fmt::format("unsupported model_type '{}' (expected deepseek_v4, deepseek_v32, deepseek_v3, llama, mistral or qwen2)",
                       c.model_type));
  }
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path file = fs::is_directory(path) ? fs::path(path) / "config.json" : fs::path(path);
  std::ifstream in(file);
  if (!in) throw UsageError(fmt::format("cannot read model config '{}'", file.string()));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw UsageError(fmt::format("'{}' is not valid JSON", file.string()));
  return parse_model_config(j, path);
}

}  // namespace v4b
