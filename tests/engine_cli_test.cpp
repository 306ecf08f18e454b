// `v4bench synth` and `v4bench generate` end to end.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/io/safetensors.h"
#include "tests/test_util.h"

using nlohmann::json;
using v4b::test::expect_usage_error;
using v4b::test::run_cli;
using v4b::test::TempDir;

namespace {

class EngineCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_EQ(run_cli("synth --preset v4-tiny --out " + model() + " --seed 3").status, 0);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string model() { return (dir_->path / "tiny").string(); }
  static std::string env() { return "V4BENCH_CACHE_DIR=" + (dir_->path / "cache").string(); }
  static TempDir* dir_;
};
TempDir* EngineCli::dir_ = nullptr;


}  // namespace

TEST_F(EngineCli, SynthWritesConfigAndWeights) {
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(model()) / "config.json"));
  v4b::CheckpointReader ckpt(model());
  EXPECT_EQ(ckpt.at("layers.1.attn.wq_a.weight").dtype, v4b::DType::F8_E4M3);
  EXPECT_EQ(ckpt.at("layers.1.ffn.experts.0.w1.weight").dtype, v4b::DType::I8);
  EXPECT_EQ(ckpt.at("layers.0.ffn.gate.tid2eid").dtype, v4b::DType::I64);
  auto r = run_cli("inspect " + model() + " --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["config_check"]["ok"], true) << r.out.substr(0, 300);
}

TEST_F(EngineCli, GenerateJsonContractAndDeterminism) {
  // FP32 numerics: official ones (V4's default) imply BF16 activations, which this test opts into.
  const std::string args = "generate --model " + model() + " --prompt-ids 1,2,3,4,5,6,7,8 -n 6 --numerics fp32 --format json";
  auto a = run_cli(args, env()), b = run_cli(args, env());
  ASSERT_EQ(a.status, 0) << a.err;
  const json ja = json::parse(a.out), jb = json::parse(b.out);
  for (const char* k : {"tokens", "tok_per_s", "logits_hash", "kv_bytes", "gb_per_s", "prompt_tokens"}) EXPECT_TRUE(ja.contains(k)) << k;
  EXPECT_EQ(ja["tokens"].size(), 6u);
  EXPECT_EQ(ja["tokens"], jb["tokens"]);
  EXPECT_EQ(ja["logits_hash"], jb["logits_hash"]);
  EXPECT_GT(ja["kv_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(ja["bf16_activations"], false);
  EXPECT_EQ(ja["numerics"], "fp32");

  // BF16-rounded activations: labelled, and the logits are not the FP32 ones.
  auto h = run_cli(args + " --bf16-activations", env());
  ASSERT_EQ(h.status, 0) << h.err;
  const json jh = json::parse(h.out);
  EXPECT_EQ(jh["bf16_activations"], true);
  EXPECT_EQ(jh["tokens"].size(), 6u);
  EXPECT_NE(jh["logits_hash"], ja["logits_hash"]);

  auto w = run_cli("generate --model " + model() + " --prompt-ids 1,2,3,4,5,6,7,8 -n 6 --numerics fp32 --attention window --kv-format fp8 --format json", env());
  ASSERT_EQ(w.status, 0) << w.err;
  EXPECT_LT(json::parse(w.out)["kv_bytes"].get<int64_t>(), ja["kv_bytes"].get<int64_t>());

  // A synthetic preset name works as --model and is synthesised into the cache once.
  auto p = run_cli("generate --model v4-tiny --prompt-ids 5,6 -n 2 --format json", env());
  ASSERT_EQ(p.status, 0) << p.err;
}

TEST_F(EngineCli, BadInputIsRefused) {
  expect_usage_error(run_cli("generate --model " + model() + " --prompt-ids 1,2 --attention sparse", env()), "sparse");
  expect_usage_error(run_cli("generate --model " + model() + " --prompt-ids 1,99999", env()), "99999");
  expect_usage_error(run_cli("generate --model " + model() + " --prompt-ids 1,x", env()), "'x'");
  expect_usage_error(run_cli("generate --model " + model(), env()), "--prompt");
  expect_usage_error(run_cli("generate --model v4-pro --prompt-ids 1", env()), "published shapes only");
  expect_usage_error(run_cli("synth --preset v4-flash --out " + (dir_->path / "x").string()), "not a synthetic preset");

  // A checkpoint missing a tensor is refused before any compute, naming the tensor.
  const auto broken = dir_->path / "broken";
  std::filesystem::create_directories(broken);
  std::filesystem::copy_file(std::filesystem::path(model()) / "config.json", broken / "config.json");
  {
    v4b::CheckpointReader ckpt(model());
    std::vector<v4b::TensorToWrite> keep;
    for (const auto& t : ckpt.tensors())
      if (t->name != "layers.2.attn.compressor.ape") keep.push_back({t->name, t->dtype, t->shape, t->bytes()});
    v4b::write_safetensors((broken / "model.safetensors").string(), keep);
  }
  // The binder's report is a summary line plus one line per problem.
  const auto r = run_cli("generate --model " + broken.string() + " --prompt-ids 1,2", env());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("does not match config (1 problem)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("missing tensor layers.2.attn.compressor.ape"), std::string::npos) << r.err;
}
