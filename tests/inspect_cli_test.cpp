// End-to-end tests of `v4bench inspect`: listings, the config check, and one clear line with exit
// status 2 for every kind of malformed file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/core/dtypes.h"
#include "engine/io/safetensors.h"
#include "engine/models/model_config.h"
#include "engine/models/tensor_inventory.h"
#include "tests/checkpoint_util.h"
#include "tests/test_util.h"

using nlohmann::json;
using v4b::test::CliResult;
using v4b::test::run_cli;
using v4b::test::TempDir;

namespace {

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

class InspectCli : public ::testing::Test {
 protected:
  TempDir dir;

  std::string path(const std::string& name) const { return (dir.path / name).string(); }

  std::string raw(const std::string& name, uint64_t len, const std::string& header, const std::string& data) {
    return v4b::test::write_raw_safetensors(path(name), len, header, data);
  }
  std::string raw(const std::string& name, const std::string& header, const std::string& data) {
    return raw(name, header.size(), header, data);
  }

  // Shorter than the header length field itself.
  std::string short_file() {
    std::ofstream(path("short.safetensors"), std::ios::binary) << "abc";
    return path("short.safetensors");
  }

  // A small well-formed file: two tensors and a metadata entry.
  std::string good_file(const std::string& name = "good.safetensors") {
    const std::vector<uint8_t> f32(6 * 4, 0), bf16(4 * 2, 0);
    v4b::write_safetensors(path(name),
                           {{"b.weight", v4b::DType::F32, {2, 3}, f32}, {"a.norm", v4b::DType::BF16, {4}, bf16}},
                           {{"format", "pt"}});
    return path(name);
  }

  // A checkpoint directory for the tiny V4 config: config.json plus one shard of `specs`.
  void write_model_dir(const std::vector<v4b::TensorSpec>& specs) {
    std::ofstream(path("config.json")) << v4b::test::tiny_v4_config().dump(2);
    v4b::test::write_zero_checkpoint(path("model.safetensors"), specs);
  }

  static void expect_one_line_error(const CliResult& r, const std::string& needle) { v4b::test::expect_usage_error(r, needle); }
};

}  // namespace

TEST_F(InspectCli, JsonListsTensorsAndMetadata) {
  const CliResult r = run_cli("inspect " + good_file() + " --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["n_tensors"], 2);
  EXPECT_EQ(j["total_bytes"], 6 * 4 + 4 * 2);
  EXPECT_EQ(j["metadata"]["format"], "pt");
  EXPECT_EQ(j["files"], json::array({"good.safetensors"}));
  ASSERT_EQ(j["tensors"].size(), 2u);
  EXPECT_EQ(j["tensors"][0]["name"], "a.norm");  // sorted by name
  EXPECT_EQ(j["tensors"][0]["dtype"], "BF16");
  EXPECT_EQ(j["tensors"][0]["shape"], json::array({4}));
  EXPECT_EQ(j["tensors"][1]["name"], "b.weight");
  EXPECT_EQ(j["tensors"][1]["bytes"], 24);
  EXPECT_FALSE(j.contains("config_check"));  // no config.json beside a lone file
}

TEST_F(InspectCli, TableListsTensorsAndTotals) {
  const CliResult r = run_cli("inspect " + good_file());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "metadata: format = pt")) << r.out;
  EXPECT_TRUE(contains(r.out, "b.weight")) << r.out;
  EXPECT_TRUE(contains(r.out, "[2, 3]")) << r.out;
  EXPECT_TRUE(contains(r.out, "2 tensors, 32 bytes (32 B) in 1 shard\n")) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(InspectCli, MalformedFilesExitTwoWithOneLine) {
  const std::string t = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data8(8, '\0');
  struct Case {
    std::string file, needle;
  };
  const std::vector<Case> cases = {
      {raw("truncated.safetensors", t, data8.substr(0, 5)), "run past the data region"},
      {short_file(), "too short for the 8-byte header length"},
      {raw("hdrlen.safetensors", 4096, t, data8), "runs past the end of the file"},
      {raw("overlap.safetensors",
           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
           std::string(12, '\0')),
       "overlap"},
      {raw("bytecount.safetensors", R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8), "do not match shape"},
      {raw("dtype.safetensors", R"({"t":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}})", data8), "unknown dtype 'F7'"},
      {raw("garbage.safetensors", "{\"t\": [1, 2,\n\x01 oops", ""), "not valid JSON"},
      {raw("absurd_header.safetensors", uint64_t{1} << 60, t, data8), "exceeds the 100000000-byte limit"},
      {raw("absurd_shape.safetensors",
           R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", data8),
       "overflows 64 bits"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    for (const char* format : {"table", "json"}) {
      const CliResult r = run_cli("inspect " + c.file + " --format " + format);
      expect_one_line_error(r, c.needle);
      EXPECT_TRUE(contains(r.err, std::filesystem::path(c.file).filename().string())) << r.err;
      EXPECT_TRUE(r.out.empty()) << r.out;
    }
  }
}

TEST_F(InspectCli, MissingPathAndBadConfig) {
  expect_one_line_error(run_cli("inspect " + path("nope.safetensors")), "no such file or directory");
  good_file();
  std::ofstream(path("config.json")) << "{ not json";
  expect_one_line_error(run_cli("inspect " + dir.path.string()), "is not valid JSON");
  std::ofstream(path("config.json")) << R"({"model_type": "gpt2"})";
  expect_one_line_error(run_cli("inspect " + dir.path.string()), "missing required key 'hidden_size'");
}

TEST_F(InspectCli, CheckConfigNeedsAConfig) {
  expect_one_line_error(run_cli("inspect " + good_file() + " --check-config"), "no config.json");
}

TEST_F(InspectCli, DirectoryWithConfigIsChecked) {
  write_model_dir(expected_tensors(v4b::parse_model_config(v4b::test::tiny_v4_config(), "tiny"), true));
  const CliResult r = run_cli("inspect " + dir.path.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "config check: ok")) << r.out;
  EXPECT_TRUE(contains(r.out, "MTP weights present")) << r.out;

  const CliResult j = run_cli("inspect " + dir.path.string() + " --format json");
  ASSERT_EQ(j.status, 0) << j.err;
  const json out = json::parse(j.out);
  EXPECT_EQ(out["config_check"]["ok"], true);
  EXPECT_EQ(out["config_check"]["mtp"], true);
  EXPECT_EQ(out["config_check"]["problems"], json::array());

  // A file inside the directory is checked against the config beside it when asked.
  const CliResult f = run_cli("inspect " + path("model.safetensors") + " --check-config");
  ASSERT_EQ(f.status, 0) << f.err;
  EXPECT_TRUE(contains(f.out, "config check: ok")) << f.out;
}

TEST_F(InspectCli, DirectoryMissingATensorExitsTwoNamingIt) {
  auto specs = expected_tensors(v4b::parse_model_config(v4b::test::tiny_v4_config(), "tiny"), false);
  specs.erase(std::find_if(specs.begin(), specs.end(), [](const v4b::TensorSpec& s) { return s.name == "layers.2.attn.wkv.weight"; }));
  write_model_dir(specs);

  const CliResult r = run_cli("inspect " + dir.path.string());
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "does not match config (1 problem):")) << r.err;
  EXPECT_TRUE(contains(r.err, "missing tensor layers.2.attn.wkv.weight")) << r.err;
  EXPECT_TRUE(contains(r.out, "config check: 1 problem")) << r.out;
  EXPECT_TRUE(contains(r.out, "layers.2.attn.wkv.scale")) << r.out;  // the listing still comes out

  const CliResult j = run_cli("inspect " + dir.path.string() + " --format json");
  EXPECT_EQ(j.status, 2) << j.err;
  const json out = json::parse(j.out);
  EXPECT_EQ(out["config_check"]["ok"], false);
  EXPECT_EQ(out["config_check"]["mtp"], false);
  EXPECT_EQ(out["config_check"]["problems"], json::array({"missing tensor layers.2.attn.wkv.weight"}));
}
