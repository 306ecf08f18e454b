#include "engine/models/presets.h"

#include <filesystem>

#include <fmt/format.h>

#include "common/errors.h"

namespace v4b {

namespace {

using nlohmann::json;

// Per-layer ratios followed by the MTP block's 0 (spec §1.1).
json v4_ratios(std::vector<int> head, int pairs) {
  for (int i = 0; i < pairs; ++i) head.insert(head.end(), {4, 128});
  head.insert(head.end(), {4, 0});
  return head;
}

json deepseek_v4(int hidden, int layers, int heads, int q_lora, int o_groups, int topk, int experts, int inter,
                 double route_scale, json ratios) {
  return {
      {"architectures", {"DeepseekV4ForCausalLM"}},
      {"model_type", "deepseek_v4"},
      {"hidden_size", hidden},
      {"num_hidden_layers", layers},
      {"num_attention_heads", heads},
      {"num_key_value_heads", 1},
      {"head_dim", 512},
      {"qk_rope_head_dim", 64},
      {"q_lora_rank", q_lora},
      {"o_groups", o_groups},
      {"o_lora_rank", 1024},
      {"sliding_window", 128},
      {"compress_ratios", std::move(ratios)},
      {"compress_rope_theta", 160000},
      {"rope_theta", 10000},
      {"rope_scaling",
       {{"type", "yarn"}, {"factor", 16}, {"original_max_position_embeddings", 65536}, {"beta_fast", 32}, {"beta_slow", 1}}},
      {"max_position_embeddings", 1048576},
      {"index_n_heads", 64},
      {"index_head_dim", 128},
      {"index_topk", topk},
      {"vocab_size", 129280},
      {"n_routed_experts", experts},
      {"n_shared_experts", 1},
      {"num_experts_per_tok", 6},
      {"moe_intermediate_size", inter},
      {"num_hash_layers", 3},
      {"scoring_func", "sqrtsoftplus"},
      {"topk_method", "noaux_tc"},
      {"norm_topk_prob", true},
      {"routed_scaling_factor", route_scale},
      {"swiglu_limit", 10.0},
      {"hidden_act", "silu"},
      {"hc_mult", 4},
      {"hc_sinkhorn_iters", 20},
      {"hc_eps", 1e-6},
      {"rms_norm_eps", 1e-6},
      {"num_nextn_predict_layers", 1},
      {"expert_dtype", "fp4"},
      {"quantization_config",
       {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"scale_fmt", "ue8m0"}, {"activation_scheme", "dynamic"},
        {"weight_block_size", {128, 128}}}},
      {"attention_bias", false},
      {"tie_word_embeddings", false},
      {"bos_token_id", 0},
      {"eos_token_id", 1},
      {"torch_dtype", "bfloat16"},
  };
}

json deepseek_v3(bool dsa) {
  json j = {
      {"architectures", {"DeepseekV3ForCausalLM"}},
      {"model_type", dsa ? "deepseek_v32" : "deepseek_v3"},
      {"hidden_size", 7168},
      {"num_hidden_layers", 61},
      {"num_attention_heads", 128},
      {"num_key_value_heads", 128},
      {"q_lora_rank", 1536},
      {"kv_lora_rank", 512},
      {"qk_nope_head_dim", 128},
      {"qk_rope_head_dim", 64},
      {"v_head_dim", 128},
      {"intermediate_size", 18432},
      {"moe_intermediate_size", 2048},
      {"first_k_dense_replace", 3},
      {"n_routed_experts", 256},
      {"n_shared_experts", 1},
      {"num_experts_per_tok", 8},
      {"n_group", 8},
      {"topk_group", 4},
      {"topk_method", "noaux_tc"},
      {"scoring_func", "sigmoid"},
      {"norm_topk_prob", true},
      {"routed_scaling_factor", 2.5},
      {"rope_theta", 10000},
      {"rope_scaling",
       {{"type", "yarn"}, {"factor", 40}, {"original_max_position_embeddings", 4096}, {"beta_fast", 32}, {"beta_slow", 1},
        {"mscale", 1.0}, {"mscale_all_dim", 1.0}}},
      {"max_position_embeddings", 163840},
      {"vocab_size", 129280},
      {"rms_norm_eps", 1e-6},
      {"num_nextn_predict_layers", 1},
      {"quantization_config",
       {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", "dynamic"}, {"weight_block_size", {128, 128}}}},
      {"tie_word_embeddings", false},
      {"bos_token_id", 0},
      {"eos_token_id", 1},
      {"torch_dtype", "bfloat16"},
  };
  if (dsa) {
    j["index_n_heads"] = 64;
    j["index_head_dim"] = 128;
    j["index_topk"] = 2048;
  }
  return j;
}

json llama3(int hidden, int layers, int heads, int inter) {
  return {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_size", hidden},
      {"num_hidden_layers", layers},
      {"num_attention_heads", heads},
      {"num_key_value_heads", 8},
      {"head_dim", 128},
      {"intermediate_size", inter},
      {"vocab_size", 128256},
      {"max_position_embeddings", 131072},
      {"rope_theta", 500000.0},
      {"rope_scaling",
       {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
        {"original_max_position_embeddings", 8192}}},
      {"rms_norm_eps", 1e-5},
      {"tie_word_embeddings", false},
      {"bos_token_id", 128000},
      {"eos_token_id", 128001},
      {"torch_dtype", "bfloat16"},
  };
}

// Synthetic presets: same architectures at sizes a CPU runs; "synthetic" marks them for v4bench synth.
json synthetic(json j, json overrides) {
  j.update(overrides);
  j["synthetic"] = true;
  return j;
}

json v4_tiny() {
  return synthetic(deepseek_v4(256, 4, 4, 128, 2, 8, 8, 64, 1.5, {0, 4, 128, 4, 0}),
                   {{"head_dim", 128}, {"o_lora_rank", 128}, {"index_n_heads", 4}, {"num_experts_per_tok", 2},
                    {"num_hash_layers", 1}, {"vocab_size", 512}, {"max_position_embeddings", 65536}});
}

// The recall probe (engine/synth/probe.h): two layers (window, CSA), BF16 weights so the hand-built
// values are stored exactly, the full DeepSeek vocabulary so real prompts run.
json v4_probe() {
  json j = synthetic(deepseek_v4(384, 2, 3, 256, 1, 512, 2, 64, 1.0, {0, 4}),
                     {{"head_dim", 320}, {"o_lora_rank", 192}, {"index_n_heads", 1}, {"num_experts_per_tok", 1},
                      {"num_hash_layers", 1}, {"num_nextn_predict_layers", 0}, {"synthetic_weights", "ngram-induction-probe"}});
  j.erase("quantization_config");
  j.erase("expert_dtype");
  return j;
}

json v4_small() {
  return synthetic(deepseek_v4(1024, 6, 8, 512, 4, 512, 16, 1024, 1.5, {0, 4, 128, 4, 128, 4, 0}),
                   {{"o_lora_rank", 256}, {"index_n_heads", 16}, {"num_experts_per_tok", 4}, {"num_hash_layers", 1},
                    {"vocab_size", 32000}});
}

json v32_tiny() {
  return synthetic(deepseek_v3(true), {{"hidden_size", 256}, {"num_hidden_layers", 3}, {"num_attention_heads", 4},
                                       {"num_key_value_heads", 4}, {"q_lora_rank", 128}, {"kv_lora_rank", 128},
                                       {"qk_nope_head_dim", 64}, {"v_head_dim", 64}, {"intermediate_size", 512},
                                       {"moe_intermediate_size", 64}, {"first_k_dense_replace", 1}, {"n_routed_experts", 8},
                                       {"num_experts_per_tok", 2}, {"n_group", 2}, {"topk_group", 1}, {"index_n_heads", 4},
                                       {"index_topk", 16}, {"vocab_size", 512}, {"max_position_embeddings", 65536}});
}

json v32_small() {
  return synthetic(deepseek_v3(true), {{"hidden_size", 1024}, {"num_hidden_layers", 6}, {"num_attention_heads", 8},
                                       {"num_key_value_heads", 8}, {"q_lora_rank", 512}, {"kv_lora_rank", 512},
                                       {"intermediate_size", 2816}, {"moe_intermediate_size", 1024}, {"first_k_dense_replace", 1},
                                       {"n_routed_experts", 16}, {"num_experts_per_tok", 4}, {"n_group", 4}, {"topk_group", 2},
                                       {"index_n_heads", 16}, {"vocab_size", 32000}});
}

json gqa(int hidden, int layers, int heads, int kv_heads, int inter, int vocab) {
  return synthetic(llama3(hidden, layers, heads, inter), {{"num_key_value_heads", kv_heads}, {"head_dim", 64},
                                                          {"vocab_size", vocab}, {"bos_token_id", 0}, {"eos_token_id", 1}});
}

// The GQA recall probe (engine/synth/probe.h): RoPE over the whole head as Llama does, with a base
// so large that the upper half of the pairs barely turns over a million tokens and can carry content.
json gqa_probe() {
  json j = synthetic(llama3(384, 2, 3, 64), {{"num_key_value_heads", 1}, {"head_dim", 384}, {"rope_theta", 1e14},
                                             {"max_position_embeddings", 1048576}, {"vocab_size", 129280}, {"bos_token_id", 0},
                                             {"eos_token_id", 1}, {"synthetic_weights", "ngram-induction-probe"}});
  j.erase("rope_scaling");
  return j;
}

struct Preset {
  PresetInfo info;
  json (*make)();
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = {
      {{"v4-flash", "DeepSeek-V4-Flash: 284B total / 13B active, 43 layers, CSA+HCA, FP8 + FP4 experts"},
       [] { return deepseek_v4(4096, 43, 64, 1024, 8, 512, 256, 2048, 1.5, v4_ratios({0, 0}, 20)); }},
      {{"v4-pro", "DeepSeek-V4-Pro: 1.6T total / 49B active, 61 layers, CSA+HCA, FP8 + FP4 experts"},
       [] { return deepseek_v4(7168, 61, 128, 1536, 16, 1024, 384, 3072, 2.5, v4_ratios({128, 128}, 29)); }},
      {{"v3.2", "DeepSeek-V3.2: 671B / 37B active, MLA + DSA lightning indexer (top-2048), FP8"},
       [] { return deepseek_v3(true); }},
      {{"v3", "DeepSeek-V3 / V3.1: 671B / 37B active, MLA over every token, FP8"}, [] { return deepseek_v3(false); }},
      {{"llama3-8b", "Llama-3.1-8B: dense GQA (32 heads, 8 KV heads), BF16"}, [] { return llama3(4096, 32, 32, 14336); }},
      {{"llama3-70b", "Llama-3.1-70B: dense GQA (64 heads, 8 KV heads), BF16"}, [] { return llama3(8192, 80, 64, 28672); }},
      {{"v4-tiny", "synthetic DeepSeek-V4, 4 layers (SWA, CSA, HCA, CSA), hidden 256: a few MB, for tests"}, v4_tiny},
      {{"v4-small", "synthetic DeepSeek-V4, 6 layers of all three types, 16 experts: ~400 MB, for demos and benchmarks"}, v4_small},
      {{"v4-probe", "DeepSeek-V4-shaped recall probe: hand-built 3-gram induction weights, copies what followed a repeated n-gram"},
       v4_probe},
      {{"v32-tiny", "synthetic DeepSeek-V3.2 (MLA + DSA), 3 layers, hidden 256, for tests"}, v32_tiny},
      {{"v32-small", "synthetic DeepSeek-V3.2 (MLA + DSA), 6 layers, hidden 1024, 16 experts"}, v32_small},
      {{"gqa-tiny", "synthetic Llama-style dense GQA, 2 layers, hidden 256, for tests"}, [] { return gqa(256, 2, 4, 2, 512, 512); }},
      {{"gqa-probe", "Llama-style recall probe: the same 3-gram induction circuit as v4-probe in dense GQA"}, gqa_probe},
      {{"gqa-small", "synthetic Llama-style dense GQA, 8 layers, hidden 1024"}, [] { return gqa(1024, 8, 16, 4, 2816, 32000); }},
  };
  return all;
}

}  // namespace

const std::vector<PresetInfo>& preset_list() {
  static const std::vector<PresetInfo> list = [] {
    std::vector<PresetInfo> out;
    for (const auto& p : presets()) out.push_back(p.info);
    return out;
  }();
  return list;
}

json preset_config_json(const std::string& name) {
  for (const auto& p : presets())
    if (p.info.name == name) return p.make();
  std::string known;
  for (const auto& p : presets()) known += (known.empty() ? "" : ", ") + p.info.name;
  throw UsageError(fmt::format("unknown model '{}': expected a preset ({}) or a checkpoint directory with config.json", name, known));
}

ModelConfig resolve_model(const std::string& name_or_path) {
  for (const auto& p : presets())
    if (p.info.name == name_or_path) return parse_model_config(p.make(), name_or_path);
  if (std::filesystem::exists(name_or_path)) return load_model_config(name_or_path);
  // A path (it names a directory) that is not there: say so, not "unknown model".
  if (name_or_path.find('/') != std::string::npos || name_or_path.starts_with("."))
    throw UsageError(fmt::format("the model directory '{}' does not exist", name_or_path));
  preset_config_json(name_or_path);  // throws the "unknown model" error
  return {};
}

}  // namespace v4b
