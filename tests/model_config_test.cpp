// config.json parsing: presets carry the published shapes; bad configs fail with a named key.
#include <gtest/gtest.h>

#include "common/errors.h"
#include "engine/models/model_config.h"
#include "engine/models/presets.h"

using namespace v4b;
using nlohmann::json;

namespace {
std::string error_of(const json& j) {
  try {
    parse_model_config(j, "test");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(ModelConfig, V4FlashLayerSchedule) {
  const ModelConfig m = resolve_model("v4-flash");
  EXPECT_EQ(m.family, Family::kDeepSeekV4);
  ASSERT_EQ(m.layers.size(), 43u);
  EXPECT_EQ(m.layers[0].attn, AttnKind::kSwa);
  EXPECT_EQ(m.layers[1].attn, AttnKind::kSwa);
  EXPECT_EQ(m.layers[2].attn, AttnKind::kCsa);
  EXPECT_EQ(m.layers[3].attn, AttnKind::kHca);
  EXPECT_EQ(m.layers[42].attn, AttnKind::kCsa);
  EXPECT_EQ(m.count_layers(AttnKind::kCsa), 21);
  EXPECT_EQ(m.count_layers(AttnKind::kHca), 20);
  EXPECT_TRUE(m.layers[2].hash_routed);
  EXPECT_FALSE(m.layers[3].hash_routed);
  EXPECT_EQ(m.index_topk, 512);
  EXPECT_EQ(m.expert_weights, WeightFormat::kFp4);
  EXPECT_EQ(m.dense_weights, WeightFormat::kFp8);
  EXPECT_EQ(m.compress_ratios.size(), 44u);
  EXPECT_DOUBLE_EQ(m.rope_scaling.factor, 16);
}

TEST(ModelConfig, V4ProAndBaselines) {
  const ModelConfig pro = resolve_model("v4-pro");
  EXPECT_EQ(pro.count_layers(AttnKind::kCsa), 30);
  EXPECT_EQ(pro.count_layers(AttnKind::kHca), 31);
  EXPECT_EQ(pro.count_layers(AttnKind::kSwa), 0);
  EXPECT_EQ(pro.layers[0].attn, AttnKind::kHca);
  EXPECT_EQ(pro.index_topk, 1024);
  const ModelConfig v32 = resolve_model("v3.2");
  EXPECT_EQ(v32.family, Family::kDeepSeekV32);
  EXPECT_EQ(v32.count_layers(AttnKind::kMlaDsa), 61);
  EXPECT_FALSE(v32.layers[2].moe);
  EXPECT_TRUE(v32.layers[3].moe);
  EXPECT_EQ(resolve_model("v3").count_layers(AttnKind::kMla), 61);
  const ModelConfig llama = resolve_model("llama3-8b");
  EXPECT_EQ(llama.family, Family::kDenseGqa);
  EXPECT_EQ(llama.head_dim, 128);
  EXPECT_EQ(llama.n_kv_heads, 8);
}

TEST(ModelConfig, DeepSeekV3WithIndexerKeysIsV32) {
  json j = preset_config_json("v3.2");
  j["model_type"] = "deepseek_v3";  // how some V3.2 ports label it
  EXPECT_EQ(parse_model_config(j, "x").family, Family::kDeepSeekV32);
}

TEST(ModelConfig, BadConfigsNameTheProblem) {
  json j = preset_config_json("v4-flash");
  j.erase("hidden_size");
  EXPECT_NE(error_of(j).find("hidden_size"), std::string::npos);

  j = preset_config_json("v4-flash");
  j["hidden_size"] = "big";
  EXPECT_NE(error_of(j).find("'hidden_size' must be an integer"), std::string::npos);

  j = preset_config_json("v4-flash");
  j["num_hidden_layers"] = -3;
  EXPECT_NE(error_of(j).find("num_hidden_layers"), std::string::npos);

  j = preset_config_json("v4-flash");
  j["compress_ratios"].erase(0);
  j["compress_ratios"].erase(0);
  EXPECT_NE(error_of(j).find("compress_ratios has 42 entries"), std::string::npos);

  j = preset_config_json("v4-flash");
  j["compress_ratios"][5] = 16;
  EXPECT_NE(error_of(j).find("compress_ratios[5] is 16"), std::string::npos);

  j = preset_config_json("v4-pro");
  j["o_groups"] = 7;
  EXPECT_NE(error_of(j).find("o_groups"), std::string::npos);

  j = preset_config_json("v3.2");
  j["num_experts_per_tok"] = 300;
  EXPECT_NE(error_of(j).find("num_experts_per_tok"), std::string::npos);

  j = preset_config_json("llama3-8b");
  j["model_type"] = "gpt2";
  EXPECT_NE(error_of(j).find("unsupported model_type 'gpt2'"), std::string::npos);

  EXPECT_NE(error_of(json::array()).find("expected a JSON object"), std::string::npos);
  EXPECT_THROW(resolve_model("no-such-preset"), UsageError);
  EXPECT_THROW(load_model_config("/nonexistent/dir"), UsageError);
}
