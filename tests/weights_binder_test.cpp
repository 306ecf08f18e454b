// check_checkpoint on tiny synthetic checkpoints: a fitting one binds, and every missing tensor,
// wrong dtype and wrong shape is named in one error raised before anything is computed.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>

#include "common/errors.h"
#include "engine/io/safetensors.h"
#include "engine/models/model_config.h"
#include "engine/models/presets.h"
#include "engine/models/tensor_inventory.h"
#include "engine/models/weights_binder.h"
#include "tests/checkpoint_util.h"
#include "tests/test_util.h"

using namespace v4b;
using v4b::test::TempDir;

namespace {

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

class WeightsBinder : public ::testing::Test {
 protected:
  TempDir dir;
  const ModelConfig tiny = parse_model_config(test::tiny_v4_config(), "tiny");

  std::string write(const std::vector<TensorSpec>& specs, const std::string& name = "model.safetensors") {
    const std::string path = (dir.path / name).string();
    test::write_zero_checkpoint(path, specs);
    return path;
  }

  // The UsageError text of check_checkpoint, or "" if it passed.
  static std::string check_error(const ModelConfig& m, const std::string& path, bool require_mtp = false) {
    const CheckpointReader ckpt(path);
    try {
      check_checkpoint(m, ckpt, require_mtp);
      return "";
    } catch (const UsageError& e) {
      return e.what();
    }
  }

  static TensorSpec& find(std::vector<TensorSpec>& specs, const std::string& name) {
    const auto it = std::find_if(specs.begin(), specs.end(), [&](const TensorSpec& s) { return s.name == name; });
    if (it == specs.end()) throw std::runtime_error("test bug: no " + name);
    return *it;
  }
};

}  // namespace

TEST_F(WeightsBinder, TinyInventoryCoversEveryLayerKind) {
  // The tiny config is only useful if it exercises SWA, CSA, HCA, hash routing and MTP.
  ASSERT_EQ(tiny.layers.size(), 4u);
  EXPECT_EQ(tiny.layers[0].attn, AttnKind::kSwa);
  EXPECT_EQ(tiny.layers[1].attn, AttnKind::kCsa);
  EXPECT_EQ(tiny.layers[2].attn, AttnKind::kHca);
  EXPECT_TRUE(tiny.layers[0].hash_routed);
  std::map<std::string, TensorSpec> t;
  for (const auto& s : expected_tensors(tiny, true)) t.emplace(s.name, s);
  EXPECT_EQ(shape_string(t.at("layers.0.ffn.gate.tid2eid").shape), "[512, 2]");
  EXPECT_EQ(shape_string(t.at("layers.1.attn.indexer.compressor.ape").shape), "[4, 128]");
  EXPECT_EQ(shape_string(t.at("layers.2.attn.compressor.ape").shape), "[128, 128]");
  EXPECT_EQ(shape_string(t.at("layers.1.ffn.experts.3.w2.weight").shape), "[256, 32]");
  EXPECT_EQ(shape_string(t.at("layers.1.ffn.experts.3.w2.scale").shape), "[256, 2]");
  EXPECT_EQ(shape_string(t.at("layers.0.attn.wq_a.scale").shape), "[1, 2]");  // ceil(64/128), ceil(256/128)
  EXPECT_EQ(t.count("mtp.0.e_proj.scale"), 1u);
}

TEST_F(WeightsBinder, FittingCheckpointBinds) {
  const std::string with_mtp = write(expected_tensors(tiny, true), "with_mtp.safetensors");
  EXPECT_EQ(check_error(tiny, with_mtp), "");
  EXPECT_EQ(check_error(tiny, with_mtp, /*require_mtp=*/true), "");

  // MTP weights are optional unless asked for.
  const std::string trunk = write(expected_tensors(tiny, false), "trunk.safetensors");
  EXPECT_EQ(check_error(tiny, trunk), "");
  const std::string err = check_error(tiny, trunk, /*require_mtp=*/true);
  EXPECT_TRUE(contains(err, "missing tensor mtp.0.e_proj.weight")) << err;
}

TEST_F(WeightsBinder, ExtraTensorsAreIgnored) {
  auto specs = expected_tensors(tiny, false);
  specs.push_back({"rotary.inv_freq", DType::F32, {32}});
  specs.push_back({"mtp.0.e_proj.weight", DType::BF16, {3, 3}});  // a broken MTP block nobody asked for
  EXPECT_EQ(check_error(tiny, write(specs)), "");
}

TEST_F(WeightsBinder, ReportsEveryProblemInOneError) {
  auto specs = expected_tensors(tiny, false);
  specs.erase(std::find_if(specs.begin(), specs.end(), [](const TensorSpec& s) { return s.name == "layers.3.attn.wkv.weight"; }));
  find(specs, "layers.0.attn.wq_a.weight").shape = {64, 255};
  find(specs, "layers.2.attn.compressor.ape").dtype = DType::BF16;
  auto& both = find(specs, "layers.1.ffn.experts.2.w1.weight");
  both.dtype = DType::U8;
  both.shape = {64, 256};
  const std::string path = write(specs);

  const std::string err = check_error(tiny, path);
  const std::string first_line = err.substr(0, err.find('\n'));
  EXPECT_EQ(first_line, "checkpoint " + path + " does not match config (4 problems):");
  EXPECT_TRUE(contains(err, "\n  missing tensor layers.3.attn.wkv.weight")) << err;
  EXPECT_TRUE(contains(err, "\n  layers.0.attn.wq_a.weight: shape [64, 255], expected [64, 256]")) << err;
  EXPECT_TRUE(contains(err, "\n  layers.2.attn.compressor.ape: dtype BF16, expected F32")) << err;
  EXPECT_TRUE(contains(err, "\n  layers.1.ffn.experts.2.w1.weight: dtype U8, expected I8; shape [64, 256], expected [64, 128]"))
      << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 4) << err;

  const CheckpointReader ckpt(path);
  EXPECT_EQ(checkpoint_problems(tiny, ckpt).size(), 4u);
}

TEST_F(WeightsBinder, LongListsAreCapped) {
  auto specs = expected_tensors(tiny, false);
  const size_t total = specs.size();
  specs.resize(total / 2);  // the second half of the inventory is missing
  const std::string err = check_error(tiny, write(specs));
  const size_t missing = total - total / 2;
  EXPECT_TRUE(contains(err, "(" + std::to_string(missing) + " problems):")) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), static_cast<long>(kMaxListedProblems) + 1) << err;
  EXPECT_TRUE(contains(err, "\n  ... and " + std::to_string(missing - kMaxListedProblems) + " more")) << err;
}

TEST_F(WeightsBinder, CheckpointOfAnotherFamilyIsCalledOut) {
  nlohmann::json llama = preset_config_json("llama3-8b");
  llama["hidden_size"] = 64;
  llama["num_hidden_layers"] = 1;
  llama["num_attention_heads"] = 4;
  llama["num_key_value_heads"] = 2;
  llama["head_dim"] = 16;
  llama["intermediate_size"] = 128;
  llama["vocab_size"] = 100;
  const ModelConfig small_llama = parse_model_config(llama, "small-llama");
  const std::string path = write(expected_tensors(small_llama, false));
  EXPECT_EQ(check_error(small_llama, path), "");
  const std::string err = check_error(tiny, path);
  EXPECT_TRUE(contains(err, "none of the")) << err;
  EXPECT_TRUE(contains(err, "deepseek_v4")) << err;
  EXPECT_TRUE(contains(err, "missing tensor embed.weight")) << err;
}

TEST_F(WeightsBinder, ShardedCheckpointWithIndex) {
  const auto specs = expected_tensors(tiny, true);
  const size_t half = specs.size() / 2;
  const std::vector<TensorSpec> a(specs.begin(), specs.begin() + static_cast<long>(half)), b(specs.begin() + static_cast<long>(half), specs.end());
  write(a, "model-00001-of-00002.safetensors");
  write(b, "model-00002-of-00002.safetensors");
  std::map<std::string, std::string> weight_map;
  for (const auto& s : a) weight_map[s.name] = "model-00001-of-00002.safetensors";
  for (const auto& s : b) weight_map[s.name] = "model-00002-of-00002.safetensors";
  write_safetensors_index((dir.path / "model.safetensors.index.json").string(), weight_map, 0);
  EXPECT_EQ(check_error(tiny, dir.path.string(), /*require_mtp=*/true), "");
}

TEST_F(WeightsBinder, Bf16SyntheticCheckpointBinds) {
  nlohmann::json j = test::tiny_v4_config();
  j.erase("quantization_config");
  j.erase("expert_dtype");
  const ModelConfig bf16 = parse_model_config(j, "tiny-bf16");
  const std::string path = write(expected_tensors(bf16, true));
  EXPECT_EQ(check_error(bf16, path, true), "");
  // The FP8 config wants E4M3 weights and scale tensors this checkpoint does not have.
  const std::string err = check_error(tiny, path);
  EXPECT_TRUE(contains(err, "layers.0.attn.wq_a.weight: dtype BF16, expected F8_E4M3")) << err;
  EXPECT_TRUE(contains(err, "missing tensor layers.0.attn.wq_a.scale")) << err;
}
