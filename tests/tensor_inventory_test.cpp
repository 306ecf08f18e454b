// The tensor inventory against the analytic parameter counts, the spec's shape tables and the
// tensor listings of released checkpoints.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/models/cost_model.h"
#include "engine/models/model_config.h"
#include "engine/models/presets.h"
#include "engine/models/tensor_inventory.h"

using namespace v4b;

namespace {

ModelConfig preset(const std::string& name) { return parse_model_config(preset_config_json(name), name); }

std::map<std::string, TensorSpec> by_name(const std::vector<TensorSpec>& specs) {
  std::map<std::string, TensorSpec> out;
  for (const auto& s : specs) EXPECT_TRUE(out.emplace(s.name, s).second) << "duplicate " << s.name;
  return out;
}

// The MTP layer of V3-style checkpoints stores second copies of the embedding and head, which the
// model shares with the trunk (and param_counts counts once).
bool is_shared_copy(const std::string& name) {
  return (name.ends_with(".embed_tokens.weight") && name != "model.embed_tokens.weight") ||
         name.ends_with(".shared_head.head.weight");
}

int64_t counted_params(const std::vector<TensorSpec>& specs) {
  int64_t n = 0;
  for (const auto& s : specs)
    if (!is_scale_tensor(s.name) && !s.name.ends_with(".tid2eid") && !is_shared_copy(s.name)) n += logical_params(s);
  return n;
}

void expect_tensor(const std::map<std::string, TensorSpec>& t, const std::string& name, DType dtype,
                   const std::vector<int64_t>& shape) {
  const auto it = t.find(name);
  ASSERT_NE(it, t.end()) << "no tensor " << name;
  EXPECT_EQ(dtype_name(it->second.dtype), dtype_name(dtype)) << name;
  EXPECT_EQ(shape_string(it->second.shape), shape_string(shape)) << name;
}

}  // namespace

TEST(TensorInventory, ParamCountsMatchEveryPresetExactly) {
  for (const auto& info : preset_list()) {
    SCOPED_TRACE(info.name);
    const ModelConfig m = preset(info.name);
    const ParamCounts p = param_counts(m);
    EXPECT_EQ(counted_params(expected_tensors(m, false)), p.total);
    EXPECT_EQ(counted_params(expected_tensors(m, true)), p.total + p.mtp);
  }
}

TEST(TensorInventory, V4MatchesIndependentRecount) {
  // Logical totals incl. MTP reported by an independent project (spec §1.5).
  EXPECT_EQ(counted_params(expected_tensors(preset("v4-flash"), true)), 290'942'289'362);
  EXPECT_EQ(counted_params(expected_tensors(preset("v4-pro"), true)), 1'598'837'347'742);
}

TEST(TensorInventory, V3FamilyMatchesReleasedCheckpointListings) {
  // Every element of every tensor (scales and the MTP layer's embedding/head copies included), as
  // listed from the released files: DeepSeek-R1 (V3 architecture) and DeepSeek-V3.2.
  auto all_elements = [](const std::vector<TensorSpec>& specs) {
    int64_t n = 0;
    for (const auto& s : specs) n += numel(s.shape);
    return n;
  };
  EXPECT_EQ(all_elements(expected_tensors(preset("v3"), true)), 684'531'386'000);
  EXPECT_EQ(all_elements(expected_tensors(preset("v3.2"), true)), 685'396'921'376);
  EXPECT_EQ(expected_tensors(preset("v3"), true).size(), 91'991u);
  EXPECT_EQ(expected_tensors(preset("v3.2"), true).size(), 92'425u);
}

TEST(TensorInventory, V4ShapesFromSpecTables) {
  const auto pro = by_name(expected_tensors(preset("v4-pro"), true));
  expect_tensor(pro, "layers.0.attn.wo_a.scale", DType::F8_E8M0, {128, 32});
  expect_tensor(pro, "layers.0.attn.wo_a.weight", DType::F8_E4M3, {16384, 4096});
  expect_tensor(pro, "layers.0.attn.wq_a.scale", DType::F8_E8M0, {12, 56});
  expect_tensor(pro, "layers.0.attn.wq_b.weight", DType::F8_E4M3, {65536, 1536});
  expect_tensor(pro, "layers.0.attn.wo_b.scale", DType::F8_E8M0, {56, 128});
  expect_tensor(pro, "layers.0.attn.compressor.ape", DType::F32, {128, 512});  // Pro layer 0 is HCA
  expect_tensor(pro, "layers.2.attn.indexer.wq_b.scale", DType::F8_E8M0, {64, 12});
  expect_tensor(pro, "layers.2.attn.compressor.wkv.weight", DType::BF16, {1024, 7168});
  expect_tensor(pro, "layers.2.ffn.gate.tid2eid", DType::I64, {129280, 6});
  expect_tensor(pro, "layers.3.ffn.gate.bias", DType::F32, {384});
  expect_tensor(pro, "layers.60.ffn.experts.383.w1.weight", DType::I8, {3072, 3584});
  expect_tensor(pro, "layers.60.ffn.experts.383.w1.scale", DType::F8_E8M0, {3072, 224});
  expect_tensor(pro, "layers.60.ffn.experts.0.w2.scale", DType::F8_E8M0, {7168, 96});
  expect_tensor(pro, "layers.5.ffn.shared_experts.w2.scale", DType::F8_E8M0, {56, 24});
  expect_tensor(pro, "hc_head_fn", DType::F32, {4, 28672});
  expect_tensor(pro, "layers.7.hc_ffn_fn", DType::F32, {24, 28672});
  expect_tensor(pro, "layers.7.attn.attn_sink", DType::F32, {128});
  expect_tensor(pro, "mtp.0.e_proj.scale", DType::F8_E8M0, {56, 56});
  expect_tensor(pro, "mtp.0.ffn.gate.bias", DType::F32, {384});
  expect_tensor(pro, "mtp.0.hc_head_scale", DType::F32, {1});
  EXPECT_EQ(pro.count("layers.61.attn_norm.weight"), 0u);
  EXPECT_EQ(pro.count("mtp.0.attn.compressor.ape"), 0u);  // the MTP block is window-only

  const auto flash = by_name(expected_tensors(preset("v4-flash"), false));
  expect_tensor(flash, "layers.3.attn.compressor.ape", DType::F32, {128, 512});  // HCA
  expect_tensor(flash, "layers.2.attn.compressor.ape", DType::F32, {4, 1024});   // CSA
  expect_tensor(flash, "layers.2.attn.indexer.compressor.ape", DType::F32, {4, 256});
  expect_tensor(flash, "layers.2.attn.indexer.compressor.norm.weight", DType::BF16, {128});
  expect_tensor(flash, "layers.2.attn.indexer.weights_proj.weight", DType::BF16, {64, 4096});
  expect_tensor(flash, "layers.0.attn.wq_a.weight", DType::F8_E4M3, {1024, 4096});
  expect_tensor(flash, "layers.0.attn.wq_a.scale", DType::F8_E8M0, {8, 32});
  expect_tensor(flash, "layers.0.attn.wkv.scale", DType::F8_E8M0, {4, 32});
  expect_tensor(flash, "layers.0.ffn.experts.0.w2.weight", DType::I8, {4096, 1024});
  expect_tensor(flash, "layers.0.ffn.experts.0.w2.scale", DType::F8_E8M0, {4096, 64});
  expect_tensor(flash, "layers.0.ffn.experts.255.w3.scale", DType::F8_E8M0, {2048, 128});
  expect_tensor(flash, "embed.weight", DType::BF16, {129280, 4096});
  expect_tensor(flash, "head.weight", DType::BF16, {129280, 4096});
  expect_tensor(flash, "hc_head_base", DType::F32, {4});
  // SWA layers have no compressor; no MTP without include_mtp.
  EXPECT_EQ(flash.count("layers.0.attn.compressor.wkv.weight"), 0u);
  EXPECT_EQ(flash.count("layers.3.attn.indexer.wq_b.weight"), 0u);
  for (const auto& [name, spec] : flash) EXPECT_FALSE(name.starts_with("mtp.")) << name;
}

TEST(TensorInventory, V3AndV32Names) {
  const auto v32 = by_name(expected_tensors(preset("v3.2"), true));
  expect_tensor(v32, "model.layers.0.self_attn.kv_a_proj_with_mqa.weight", DType::F8_E4M3, {576, 7168});
  expect_tensor(v32, "model.layers.0.self_attn.kv_a_proj_with_mqa.weight_scale_inv", DType::F32, {5, 56});
  expect_tensor(v32, "model.layers.0.self_attn.kv_b_proj.weight", DType::F8_E4M3, {32768, 512});
  expect_tensor(v32, "model.layers.0.self_attn.indexer.wk.weight_scale_inv", DType::F32, {1, 56});
  expect_tensor(v32, "model.layers.0.self_attn.indexer.wq_b.weight", DType::F8_E4M3, {8192, 1536});
  expect_tensor(v32, "model.layers.0.self_attn.indexer.k_norm.bias", DType::F32, {128});
  expect_tensor(v32, "model.layers.0.self_attn.indexer.weights_proj.weight", DType::BF16, {64, 7168});
  expect_tensor(v32, "model.layers.2.mlp.down_proj.weight_scale_inv", DType::F32, {56, 144});
  expect_tensor(v32, "model.layers.3.mlp.gate.e_score_correction_bias", DType::F32, {256});
  expect_tensor(v32, "model.layers.3.mlp.experts.255.down_proj.weight", DType::F8_E4M3, {7168, 2048});
  expect_tensor(v32, "model.layers.3.mlp.shared_experts.gate_proj.weight_scale_inv", DType::F32, {16, 56});
  expect_tensor(v32, "model.layers.61.eh_proj.weight", DType::BF16, {7168, 14336});
  expect_tensor(v32, "model.layers.61.self_attn.indexer.wk.weight", DType::F8_E4M3, {128, 7168});
  expect_tensor(v32, "model.layers.61.shared_head.norm.weight", DType::F32, {7168});
  expect_tensor(v32, "model.norm.weight", DType::F32, {7168});
  EXPECT_EQ(v32.count("model.layers.2.mlp.gate.weight"), 0u);
  EXPECT_EQ(v32.count("model.layers.61.eh_proj.weight_scale_inv"), 0u);

  const auto v3 = by_name(expected_tensors(preset("v3"), false));
  expect_tensor(v3, "model.layers.0.input_layernorm.weight", DType::BF16, {7168});
  expect_tensor(v3, "model.layers.60.self_attn.o_proj.weight", DType::F8_E4M3, {7168, 16384});
  expect_tensor(v3, "lm_head.weight", DType::BF16, {129280, 7168});
  EXPECT_EQ(v3.count("model.layers.0.self_attn.indexer.wk.weight"), 0u);
  EXPECT_EQ(v3.count("model.layers.61.enorm.weight"), 0u);
}

TEST(TensorInventory, DenseGqaNamesAndTiedHead) {
  const auto l8 = by_name(expected_tensors(preset("llama3-8b"), false));
  expect_tensor(l8, "model.layers.31.self_attn.k_proj.weight", DType::BF16, {1024, 4096});
  expect_tensor(l8, "model.layers.0.mlp.down_proj.weight", DType::BF16, {4096, 14336});
  expect_tensor(l8, "lm_head.weight", DType::BF16, {128256, 4096});
  EXPECT_EQ(l8.size(), 2u + 1 + 32 * 9);

  nlohmann::json j = preset_config_json("llama3-8b");
  j["tie_word_embeddings"] = true;
  const auto tied = by_name(expected_tensors(parse_model_config(j, "tied"), false));
  EXPECT_EQ(tied.count("lm_head.weight"), 0u);
  EXPECT_EQ(tied.size(), l8.size() - 1);

  j["model_type"] = "qwen2";
  const ModelConfig qwen = parse_model_config(j, "qwen2");
  const auto q = by_name(expected_tensors(qwen, false));
  expect_tensor(q, "model.layers.0.self_attn.k_proj.bias", DType::BF16, {1024});
  EXPECT_EQ(counted_params(expected_tensors(qwen, false)), param_counts(qwen).total);
}

TEST(TensorInventory, Bf16V4HasNoScales) {
  nlohmann::json j = preset_config_json("v4-flash");
  j.erase("quantization_config");
  const auto specs = expected_tensors(parse_model_config(j, "bf16"), true);
  for (const auto& s : specs) EXPECT_FALSE(is_scale_tensor(s.name)) << s.name;
  const auto t = by_name(specs);
  expect_tensor(t, "layers.0.attn.wq_a.weight", DType::BF16, {1024, 4096});
  expect_tensor(t, "layers.0.ffn.experts.0.w2.weight", DType::BF16, {4096, 2048});
  EXPECT_EQ(counted_params(specs), param_counts(parse_model_config(j, "bf16")).total + param_counts(parse_model_config(j, "bf16")).mtp);
}

TEST(TensorInventory, Fp8ExpertV4BaseUsesBlockScales) {
  nlohmann::json j = preset_config_json("v4-flash");
  j["expert_dtype"] = "fp8";
  const auto t = by_name(expected_tensors(parse_model_config(j, "base"), false));
  expect_tensor(t, "layers.0.ffn.experts.0.w1.weight", DType::F8_E4M3, {2048, 4096});
  expect_tensor(t, "layers.0.ffn.experts.0.w1.scale", DType::F32, {16, 32});
  expect_tensor(t, "layers.0.attn.wq_a.scale", DType::F32, {8, 32});
}
