#include <gtest/gtest.h>

#include "tests/test_util.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine/core/dtypes.h"
#include "common/errors.h"
#include "engine/io/inspect.h"
#include "engine/io/safetensors.h"

using namespace v4b;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("v4b_st_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  std::string raw(const std::string& name, uint64_t len, const std::string& header, const std::string& data) {
    return v4b::test::write_raw_safetensors(file(name), len, header, data);
  }
  std::string raw(const std::string& name, const std::string& header, const std::string& data) {
    return raw(name, header.size(), header, data);
  }

  // Opening must throw a UsageError whose one-line message names the file and contains `needle`.
  void expect_rejected(const std::string& path, const std::string& needle) {
    try {
      SafetensorsFile f(path);
      ADD_FAILURE() << "accepted " << path << " (expected: " << needle << ")";
    } catch (const UsageError& e) {
      const std::string msg = e.what();
      EXPECT_TRUE(contains(msg, fs::path(path).filename().string())) << msg;
      EXPECT_TRUE(contains(msg, needle)) << msg << "\n  expected: " << needle;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }

  fs::path dir_;
};

template <typename T>
std::vector<uint8_t> to_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

const std::string kF32Pad(16, '\0');

}  // namespace

// ---------------------------------------------------------------------------------------------
// Round trips

TEST_F(SafetensorsTest, WriteReadRoundTripManyDtypes) {
  const auto f32 = to_bytes(std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f});
  std::vector<uint16_t> bf16_vals;
  for (float v : {1.0f, -0.5f, 3.0f}) bf16_vals.push_back(float_to_bf16(v).bits);
  const auto bf16 = to_bytes(bf16_vals);
  const auto i64 = to_bytes(std::vector<int64_t>{0, -1, int64_t{1} << 40, 129279, 42, 7});
  std::vector<uint8_t> e4m3 = {0x38, 0x7E, 0xFE, 0x00, 0x01};
  std::vector<uint8_t> e8m0 = {127, 120};
  std::vector<uint8_t> i8 = {0x21, 0xF7};  // packed FP4, as V4 stores experts
  const auto f16 = to_bytes(std::vector<uint16_t>{float_to_f16(2.0f).bits});
  std::vector<uint8_t> boolean = {1, 0, 1};
  std::vector<uint8_t> none;

  const std::vector<TensorToWrite> tensors = {
      {"a.f32", DType::F32, {2, 3}, f32},
      {"b.bf16", DType::BF16, {3}, bf16},
      {"ffn.gate.tid2eid", DType::I64, {1, 6}, i64},
      {"w.weight", DType::F8_E4M3, {5}, e4m3},
      {"w.scale", DType::F8_E8M0, {1, 2}, e8m0},
      {"experts.0.w1.weight", DType::I8, {1, 2}, i8},
      {"half", DType::F16, {}, f16},  // scalar: empty shape, one element
      {"flags", DType::BOOL, {3}, boolean},
      {"empty", DType::F32, {0, 4}, none},
  };
  const std::string p = file("model.safetensors");
  write_safetensors(p, tensors, {{"format", "pt"}, {"note", "round trip"}});

  const SafetensorsFile f(p);
  EXPECT_EQ((8 + f.header_size()) % 8, 0u);  // data region aligned
  EXPECT_EQ(f.tensors().size(), tensors.size());
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "round trip");
  for (const auto& t : tensors) {
    const TensorInfo& got = f.at(t.name);
    EXPECT_EQ(got.dtype, t.dtype) << t.name;
    EXPECT_EQ(got.shape, t.shape) << t.name;
    EXPECT_EQ(got.nbytes, t.bytes.size()) << t.name;
    EXPECT_TRUE(std::equal(t.bytes.begin(), t.bytes.end(), got.data)) << t.name;
  }
  EXPECT_EQ(f.at("a.f32").numel(), 6);
  EXPECT_EQ(f.at("half").numel(), 1);
  EXPECT_EQ(f.at("empty").numel(), 0);
  int64_t third = 0;
  std::memcpy(&third, f.at("ffn.gate.tid2eid").data + 16, 8);
  EXPECT_EQ(third, int64_t{1} << 40);
  EXPECT_EQ(e4m3_to_float(f.at("w.weight").data[1]), 448.0f);
  EXPECT_EQ(f.find("missing"), nullptr);
  EXPECT_THROW((void)f.at("missing"), UsageError);
  // Tensors are in data order and the file holds no stray temporaries.
  EXPECT_EQ(f.tensors().front().name, "a.f32");
  size_t n_files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++n_files;
  EXPECT_EQ(n_files, 1u);
}

TEST_F(SafetensorsTest, OverwriteIsAtomicReplacement) {
  const auto one = to_bytes(std::vector<float>{1.0f});
  const auto two = to_bytes(std::vector<float>{2.0f, 3.0f});
  const std::string p = file("x.safetensors");
  write_safetensors(p, {{"t", DType::F32, {1}, one}});
  write_safetensors(p, {{"t", DType::F32, {2}, two}});
  const SafetensorsFile f(p);
  EXPECT_EQ(f.at("t").shape, (std::vector<int64_t>{2}));
  EXPECT_TRUE(f.metadata().empty());
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  const auto four = to_bytes(std::vector<float>{1.0f});
  const std::string p = file("bad.safetensors");
  EXPECT_THROW(write_safetensors(p, {{"t", DType::F32, {2}, four}}), UsageError);
  EXPECT_THROW(write_safetensors(p, {{"t", DType::F32, {1}, four}, {"t", DType::F32, {1}, four}}), UsageError);
  EXPECT_THROW(write_safetensors(p, {{"", DType::F32, {1}, four}}), UsageError);
  EXPECT_THROW(write_safetensors(p, {{"__metadata__", DType::F32, {1}, four}}), UsageError);
  EXPECT_THROW(write_safetensors(p, {{"t", DType::F32, {-1}, four}}), UsageError);
  EXPECT_FALSE(fs::exists(p));
  EXPECT_THROW(write_safetensors(file("no/such/dir/x.safetensors"), {{"t", DType::F32, {1}, four}}), UsageError);
}

TEST_F(SafetensorsTest, ShardedIndexRoundTrip) {
  const auto a = to_bytes(std::vector<float>{1, 2, 3, 4});
  const auto b = to_bytes(std::vector<int64_t>{5, 6});
  const std::vector<uint8_t> c = {0x38, 0x40};
  const std::vector<uint8_t> cs = {127};
  write_safetensors(file("model-00001-of-00002.safetensors"), {{"embed.weight", DType::F32, {2, 2}, a}, {"layers.0.tid2eid", DType::I64, {2}, b}},
                    {{"format", "pt"}});
  write_safetensors(file("model-00002-of-00002.safetensors"), {{"layers.0.wq.weight", DType::F8_E4M3, {1, 2}, c}, {"layers.0.wq.scale", DType::F8_E8M0, {1, 1}, cs}},
                    {{"format", "pt"}, {"shard", "2"}});
  const std::map<std::string, std::string> weight_map = {
      {"embed.weight", "model-00001-of-00002.safetensors"},
      {"layers.0.tid2eid", "model-00001-of-00002.safetensors"},
      {"layers.0.wq.weight", "model-00002-of-00002.safetensors"},
      {"layers.0.wq.scale", "model-00002-of-00002.safetensors"},
  };
  write_safetensors_index(file("model.safetensors.index.json"), weight_map, 34);

  for (const std::string& path : {dir_.string(), file("model.safetensors.index.json")}) {
    const CheckpointReader ck(path);
    ASSERT_EQ(ck.size(), 4u) << path;
    EXPECT_EQ(ck.shard_names(), (std::vector<std::string>{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}));
    EXPECT_EQ(ck.index_metadata().at("total_size"), 34);
    EXPECT_EQ(ck.at("layers.0.wq.weight").dtype, DType::F8_E4M3);
    EXPECT_EQ(ck.shard_of("layers.0.wq.scale"), 1u);
    EXPECT_EQ(ck.shard_of("embed.weight"), 0u);
    float v = 0;
    std::memcpy(&v, ck.at("embed.weight").data + 12, 4);
    EXPECT_EQ(v, 4.0f);
    EXPECT_EQ(ck.tensors().front()->name, "embed.weight");  // sorted by name
    EXPECT_EQ(ck.find("nope"), nullptr);
    EXPECT_THROW((void)ck.at("nope"), UsageError);
  }

  const auto j = inspect_checkpoint(dir_.string());
  EXPECT_EQ(j["n_tensors"], 4);
  EXPECT_EQ(j["total_bytes"], 16 + 16 + 2 + 1);
  EXPECT_EQ(j["files"].size(), 2u);
  EXPECT_EQ(j["metadata"]["total_size"], 34);
  EXPECT_EQ(j["metadata"]["format"], "pt");
  EXPECT_EQ(j["metadata"]["shard"], "2");
  EXPECT_EQ(j["tensors"][0]["name"], "embed.weight");
  EXPECT_EQ(j["tensors"][0]["dtype"], "F32");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json::array({2, 2}));
  EXPECT_EQ(j["tensors"][0]["bytes"], 16);
  EXPECT_EQ(j["tensors"][0]["file"], "model-00001-of-00002.safetensors");
  EXPECT_EQ(j["tensors"][3]["name"], "layers.0.wq.weight");
  EXPECT_EQ(j["tensors"][3]["file"], "model-00002-of-00002.safetensors");
}

TEST_F(SafetensorsTest, DirectoryWithoutIndexAndSingleFile) {
  const auto a = to_bytes(std::vector<float>{1});
  write_safetensors(file("b.safetensors"), {{"y", DType::F32, {1}, a}});
  write_safetensors(file("a.safetensors"), {{"x", DType::F32, {1}, a}});
  const CheckpointReader ck(dir_.string());
  EXPECT_EQ(ck.shard_names(), (std::vector<std::string>{"a.safetensors", "b.safetensors"}));
  EXPECT_EQ(ck.shard_of("y"), 1u);
  const CheckpointReader single(file("b.safetensors"));
  EXPECT_EQ(single.size(), 1u);
  const auto j = inspect_checkpoint(file("a.safetensors"));
  EXPECT_EQ(j["n_tensors"], 1);
  EXPECT_EQ(j["files"], nlohmann::json::array({"a.safetensors"}));
  EXPECT_TRUE(j["metadata"].is_object());

  // The same tensor name in two shards without an index is ambiguous.
  write_safetensors(file("c.safetensors"), {{"x", DType::F32, {1}, a}});
  try {
    CheckpointReader dup(dir_.string());
    ADD_FAILURE() << "duplicate accepted";
  } catch (const UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "'x' appears in both 'a.safetensors' and 'c.safetensors'")) << e.what();
  }
}

TEST_F(SafetensorsTest, IndexProblemsRejected) {
  const auto a = to_bytes(std::vector<float>{1});
  write_safetensors(file("s1.safetensors"), {{"x", DType::F32, {1}, a}});
  const std::string idx = file("model.safetensors.index.json");

  write_safetensors_index(idx, {{"x", "s1.safetensors"}, {"ghost", "s1.safetensors"}}, 4);
  EXPECT_THROW(CheckpointReader{dir_.string()}, UsageError);
  try {
    CheckpointReader ck(idx);
    ADD_FAILURE() << "ghost tensor accepted";
  } catch (const UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "'ghost'")) << e.what();
    EXPECT_TRUE(contains(e.what(), "model.safetensors.index.json")) << e.what();
  }
  write_safetensors_index(idx, {{"x", "missing.safetensors"}}, 4);
  EXPECT_THROW(CheckpointReader{idx}, UsageError);
  write_safetensors_index(idx, {{"x", "../s1.safetensors"}}, 4);
  EXPECT_THROW(CheckpointReader{idx}, UsageError);
  write_safetensors_index(idx, {{"x", "/etc/passwd"}}, 4);
  EXPECT_THROW(CheckpointReader{idx}, UsageError);
  write_safetensors_index(idx, {}, 0);
  EXPECT_THROW(CheckpointReader{idx}, UsageError);
  for (const char* text : {"", "[]", "{\"weight_map\": 3}", "{\"weight_map\": {\"x\": 1}}", "{not json"}) {
    std::ofstream(idx, std::ios::trunc) << text;
    EXPECT_THROW(CheckpointReader{idx}, UsageError) << text;
  }
  EXPECT_THROW(CheckpointReader{file("does-not-exist")}, UsageError);
  fs::create_directories(dir_ / "empty");
  EXPECT_THROW(CheckpointReader{(dir_ / "empty").string()}, UsageError);
  EXPECT_THROW(inspect_checkpoint(idx), UsageError);
}

// ---------------------------------------------------------------------------------------------
// Malformed files: each must be a UsageError, never a crash.

TEST_F(SafetensorsTest, RejectsTruncatedFiles) {
  {
    std::ofstream(file("tiny.safetensors"), std::ios::binary) << "abcde";
  }
  expect_rejected(file("tiny.safetensors"), "too short");
  std::ofstream(file("zero.safetensors"), std::ios::binary).close();
  expect_rejected(file("zero.safetensors"), "too short");
  // A valid file cut short inside its data.
  const auto a = to_bytes(std::vector<float>{1, 2, 3, 4});
  write_safetensors(file("cut.safetensors"), {{"x", DType::F32, {4}, a}});
  fs::resize_file(file("cut.safetensors"), fs::file_size(file("cut.safetensors")) - 4);
  expect_rejected(file("cut.safetensors"), "run past the data region");
  // Cut inside the header.
  write_safetensors(file("cut2.safetensors"), {{"x", DType::F32, {4}, a}});
  fs::resize_file(file("cut2.safetensors"), 20);
  expect_rejected(file("cut2.safetensors"), "runs past the end of the file");
}

TEST_F(SafetensorsTest, RejectsBadHeaderLengths) {
  const std::string h = R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_rejected(raw("beyond.safetensors", h.size() + 100, h, "abcd"), "runs past the end of the file");
  expect_rejected(raw("absurd.safetensors", uint64_t{1} << 60, h, "abcd"), "exceeds the 100000000-byte limit");
  expect_rejected(raw("max.safetensors", ~uint64_t{0}, h, "abcd"), "exceeds");
  expect_rejected(raw("zero.safetensors", 0, h, "abcd"), "too small");
  expect_rejected(raw("one.safetensors", 1, h, "abcd"), "too small");
}

TEST_F(SafetensorsTest, RejectsBadJson) {
  expect_rejected(raw("garbage.safetensors", "{not json at all", ""), "not valid JSON");
  expect_rejected(raw("trailing.safetensors", "{} {}", ""), "not valid JSON");
  expect_rejected(raw("nul.safetensors", std::string("{}\0\0", 4), ""), "not valid JSON");
  expect_rejected(raw("badutf8.safetensors", "{\"\xff\xfe\":1}", ""), "not valid JSON");
  expect_rejected(raw("newline.safetensors", "{\n\"a\n", ""), "not valid JSON");
  expect_rejected(raw("array.safetensors", "[1, 2, 3]", ""), "not an object");
  expect_rejected(raw("string.safetensors", "\"hello\"", ""), "not an object");
  expect_rejected(raw("null.safetensors", "null", ""), "not an object");
  expect_rejected(raw("number.safetensors", "42", ""), "not an object");
  expect_rejected(raw("entry.safetensors", R"({"x": [1]})", ""), "tensor 'x' is not a JSON object");
  expect_rejected(raw("dup.safetensors", R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0')),
                  "more than once");
  expect_rejected(raw("meta.safetensors", R"({"__metadata__": {"a": 1}})", ""), "__metadata__ value for 'a' is not a string");
  expect_rejected(raw("meta2.safetensors", R"({"__metadata__": ["a"]})", ""), "__metadata__ is not a JSON object");
  // Deep nesting must not blow the stack.
  expect_rejected(raw("deep.safetensors", std::string(100000, '[') + std::string(100000, ']'), ""), "not an object");
}

TEST_F(SafetensorsTest, RejectsBadTensorEntries) {
  auto one = [&](const std::string& name, const std::string& entry, const std::string& data, const std::string& needle) {
    expect_rejected(raw(name, "{\"x\":" + entry + "}", data), needle);
  };
  one("unknown_dtype.safetensors", R"({"dtype":"Q4_K","shape":[1],"data_offsets":[0,4]})", "abcd", "unknown dtype 'Q4_K'");
  one("lower_dtype.safetensors", R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})", "abcd", "unknown dtype");
  one("no_dtype.safetensors", R"({"shape":[1],"data_offsets":[0,4]})", "abcd", "dtype");
  one("neg_shape.safetensors", R"({"dtype":"F32","shape":[-1,4],"data_offsets":[0,4]})", "abcd", "shape[0] is negative");
  one("float_shape.safetensors", R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})", "abcd", "shape[0] is not an integer");
  one("str_shape.safetensors", R"({"dtype":"F32","shape":["1"],"data_offsets":[0,4]})", "abcd", "shape[0] is a string");
  one("big_shape.safetensors", R"({"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]})", "abcd", "too large");
  one("huge_shape.safetensors", R"({"dtype":"F32","shape":[1e30],"data_offsets":[0,4]})", "abcd", "not an integer");
  one("no_shape.safetensors", R"({"dtype":"F32","shape":4,"data_offsets":[0,4]})", "abcd", "shape");
  // 2^32 * 2^32 * 4 wraps to 0 in 64 bits and would "match" an empty range if unchecked.
  one("overflow.safetensors", R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]})", "", "overflows 64 bits");
  one("overflow2.safetensors", R"({"dtype":"I64","shape":[2305843009213693952],"data_offsets":[0,0]})", "", "overflows 64 bits");
  one("wrong_bytes.safetensors", R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,12]})", std::string(12, '\0'),
      "tensor 'x' data_offsets [0, 12) do not match shape [2, 2] x F32 = 16 bytes");
  one("beyond.safetensors", R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})", "abcd", "run past the data region (4 bytes)");
  one("beyond_huge.safetensors", R"({"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,18446744073709551615]})", "abcd",
      "run past the data region");
  one("reversed.safetensors", R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})", "abcdabcd", "end before they begin");
  one("neg_off.safetensors", R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", "abcd", "begin is negative");
  one("three_off.safetensors", R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", "abcdabcd", "data_offsets");
  one("no_off.safetensors", R"({"dtype":"F32","shape":[1]})", "abcd", "data_offsets");
  // Names with control characters are escaped so the message stays one line.
  expect_rejected(raw("ctrl.safetensors", "{\"a\\nb\":{\"dtype\":\"BAD\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd"), "'a\\x0ab'");
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  expect_rejected(raw("overlap.safetensors",
                      R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                      std::string(24, '\0')),
                  "tensors 'a' [0, 16) and 'b' [8, 24) overlap");
  expect_rejected(raw("same.safetensors",
                      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                      std::string(4, '\0')),
                  "overlap");
  // Contained in a larger tensor that is not its sorted neighbour.
  expect_rejected(raw("nested.safetensors",
                      R"({"big":{"dtype":"U8","shape":[32],"data_offsets":[0,32]},"m":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"n":{"dtype":"U8","shape":[4],"data_offsets":[20,24]}})",
                      std::string(32, '\0')),
                  "overlap");
  // Empty tensors own no bytes, and gaps between tensors are allowed.
  const std::string ok = raw("ok.safetensors",
                             R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},"b":{"dtype":"U8","shape":[2],"data_offsets":[20,22]}})",
                             std::string(24, '\0'));
  const SafetensorsFile f(ok);
  EXPECT_EQ(f.tensors().size(), 3u);
}

TEST_F(SafetensorsTest, RandomCorruptionNeverCrashes) {
  // Byte flips anywhere in a valid file (length prefix, header, data) must either parse or throw
  // UsageError; run under AddressSanitizer this also proves no out-of-bounds reads.
  const auto a = to_bytes(std::vector<float>{1, 2, 3, 4});
  const auto b = to_bytes(std::vector<int64_t>{9});
  write_safetensors(file("good.safetensors"), {{"alpha", DType::F32, {2, 2}, a}, {"beta", DType::I64, {1}, b}}, {{"k", "v"}});
  std::ifstream in(file("good.safetensors"), std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::mt19937 rng(1234);
  const std::string p = file("mut.safetensors");
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string m = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      const size_t pos = rng() % m.size();
      m[pos] = (rng() % 2) ? static_cast<char>(rng()) : "{}[]\",:0123456789-e."[rng() % 20];
    }
    if (rng() % 8 == 0) m.resize(rng() % m.size());
    {
      std::ofstream out(p, std::ios::binary | std::ios::trunc);
      out << m;
    }
    try {
      const SafetensorsFile f(p);
      for (const auto& t : f.tensors()) {
        // Touch every byte the reader vouches for.
        volatile uint8_t sink = 0;
        for (uint64_t i = 0; i < t.nbytes; ++i) sink = static_cast<uint8_t>(sink ^ t.data[i]);
        (void)sink;
      }
      ++parsed;
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
      ++rejected;
    }
  }
  EXPECT_GT(parsed, 0);
  EXPECT_GT(rejected, 0);
}

TEST_F(SafetensorsTest, MoveKeepsMappingValid) {
  const auto a = to_bytes(std::vector<float>{5, 6});
  write_safetensors(file("m.safetensors"), {{"x", DType::F32, {2}, a}});
  SafetensorsFile f(file("m.safetensors"));
  const uint8_t* data = f.at("x").data;
  SafetensorsFile g = std::move(f);
  EXPECT_EQ(g.at("x").data, data);
  float v = 0;
  std::memcpy(&v, g.at("x").data + 4, 4);
  EXPECT_EQ(v, 6.0f);
  std::vector<SafetensorsFile> many;
  for (int i = 0; i < 10; ++i) many.emplace_back(file("m.safetensors"));
  EXPECT_EQ(many.front().tensors().size(), 1u);
}
