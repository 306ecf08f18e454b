#include "tests/checkpoint_util.h"

#include <algorithm>

#include "engine/io/safetensors.h"

namespace v4b::test {

nlohmann::json tiny_v4_config() {
  return {
      {"model_type", "deepseek_v4"},
      {"hidden_size", 256},
      {"num_hidden_layers", 4},
      {"num_attention_heads", 4},
      {"num_key_value_heads", 1},
      {"head_dim", 128},
      {"qk_rope_head_dim", 64},
      {"q_lora_rank", 64},
      {"o_groups", 2},
      {"o_lora_rank", 64},
      {"sliding_window", 16},
      {"compress_ratios", {0, 4, 128, 4, 0}},
      {"index_n_heads", 2},
      {"index_head_dim", 64},
      {"index_topk", 8},
      {"vocab_size", 512},
      {"max_position_embeddings", 4096},
      {"n_routed_experts", 4},
      {"n_shared_experts", 1},
      {"num_experts_per_tok", 2},
      {"moe_intermediate_size", 64},
      {"num_hash_layers", 1},
      {"hc_mult", 4},
      {"hc_sinkhorn_iters", 20},
      {"num_nextn_predict_layers", 1},
      {"expert_dtype", "fp4"},
      {"quantization_config", {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"scale_fmt", "ue8m0"}, {"weight_block_size", {128, 128}}}},
  };
}

void write_zero_checkpoint(const std::string& path, const std::vector<TensorSpec>& specs) {
  size_t largest = 0;
  for (const auto& s : specs) largest = std::max(largest, static_cast<size_t>(numel(s.shape)) * dtype_size(s.dtype));
  const std::vector<uint8_t> zeros(largest, 0);
  std::vector<TensorToWrite> tensors;
  for (const auto& s : specs)
    tensors.push_back({s.name, s.dtype, s.shape, {zeros.data(), static_cast<size_t>(numel(s.shape)) * dtype_size(s.dtype)}});
  write_safetensors(path, tensors);
}

}  // namespace v4b::test
