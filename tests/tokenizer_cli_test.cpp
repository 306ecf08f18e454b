// End-to-end tests of `v4bench tokenize` and `v4bench detokenize`: output contracts, round trips
// through files, and one-line errors with exit status 2.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

using nlohmann::json;
using v4b::test::CliResult;
using v4b::test::expect_usage_error;
using v4b::test::run_cli;
using v4b::test::TempDir;

namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}


}  // namespace

TEST(TokenizeCli, TextToIdsAsJsonAndTable) {
  CliResult r = run_cli("tokenize --text 'Hello, world!' --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out), (json{{"ids", {19923, 14, 2058, 3}}}));
  r = run_cli("tokenize --text 'Hello, world!' --bos");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "0,19923,14,2058,3\n");
  r = run_cli("tokenize --text '' --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out), (json{{"ids", json::array()}}));
  r = run_cli("tokenize --text '<｜User｜>hi<think>' --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["ids"].front(), 128803);
  EXPECT_EQ(json::parse(r.out)["ids"].back(), 128821);
}

TEST(TokenizeCli, FileWithCrlfTabsAndUnicodeRoundTrips) {
  TempDir dir;
  const std::string text = "  leading spaces\tand\ttabs\r\nCRLF line\n\n\nblank lines   ";
  write(dir.path / "in.txt", text);
  CliResult r = run_cli("tokenize --format json --file " + (dir.path / "in.txt").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto ids = json::parse(r.out)["ids"].get<std::vector<int>>();
  // The golden case from datasets/tokenizer/deepseek_v3/golden_encode_lenml.json.
  EXPECT_EQ(ids, (std::vector<int>{223, 6646, 13564, 200, 458, 17299, 10284, 204, 201, 8002, 68688, 2562, 6328, 36489, 6243, 361}));

  const std::string unicode = "café 中文 👨‍👩‍👧 e\xCC\x81 <｜Assistant｜></think> x\r\n\ty";
  write(dir.path / "u.txt", unicode);
  r = run_cli("tokenize --file " + (dir.path / "u.txt").string());
  ASSERT_EQ(r.status, 0) << r.err;
  std::string list = r.out;
  list.pop_back();  // the newline
  r = run_cli("detokenize --ids " + list);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, unicode);  // exactly, no newline added
  r = run_cli("detokenize --format json --ids " + list);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["text"], unicode);
}

TEST(TokenizeCli, DetokenizeAcceptsSpacesAndBrackets) {
  CliResult r = run_cli("detokenize --ids '[19923, 14, 2058, 3]'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "Hello, world!");
  r = run_cli("detokenize --ids 0,19923,1");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "<｜begin▁of▁sentence｜>Hello<｜end▁of▁sentence｜>");
}

TEST(TokenizeCli, UsageErrorsAreOneLineWithExitTwo) {
  TempDir dir;
  expect_usage_error(run_cli("tokenize"), "exactly one of --text or --file");
  expect_usage_error(run_cli("tokenize --text a --file b"), "exactly one of --text or --file");
  expect_usage_error(run_cli("tokenize --file " + (dir.path / "nope.txt").string()), "nope.txt");
  expect_usage_error(run_cli("tokenize --text a --format csv"), "--format");
  write(dir.path / "bad.txt", "ok\xFF");
  expect_usage_error(run_cli("tokenize --file " + (dir.path / "bad.txt").string()), "not valid UTF-8");
  expect_usage_error(run_cli("detokenize"), "--ids");
  expect_usage_error(run_cli("detokenize --ids 1,x,3"), "invalid token id 'x'");
  expect_usage_error(run_cli("detokenize --ids 1,-2"), "invalid token id '-2'");
  expect_usage_error(run_cli("detokenize --ids 1,,3"), "empty entry");
  expect_usage_error(run_cli("detokenize --ids 99999999999"), "invalid token id '99999999999'");
  expect_usage_error(run_cli("detokenize --ids 129000"), "token id 129000 is out of range");
}

TEST(TokenizeCli, TokenizerOptionAndDatasetsOverride) {
  TempDir dir;
  expect_usage_error(run_cli("tokenize --text a --tokenizer " + (dir.path / "none.json").string()), "none.json");
  write(dir.path / "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}");
  expect_usage_error(run_cli("tokenize --text a --tokenizer " + dir.path.string()), "truncated");

  // A tiny byte-level vocabulary, used through --tokenizer and as the default via $V4BENCH_DATASETS.
  const std::string tiny =
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
          "decoder": {"type": "ByteLevel"}})";
  write(dir.path / "tokenizer.json", tiny);
  CliResult r = run_cli("tokenize --text abab --tokenizer " + (dir.path / "tokenizer.json").string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "2,2\n");
  const fs::path datasets = dir.path / "datasets";
  fs::create_directories(datasets / "tokenizer" / "deepseek_v3");
  write(datasets / "tokenizer" / "deepseek_v3" / "tokenizer.json", tiny);
  r = run_cli("tokenize --text ab", "V4BENCH_DATASETS=" + datasets.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "2\n");
  expect_usage_error(run_cli("tokenize --text ab --bos", "V4BENCH_DATASETS=" + datasets.string()), "no BOS");
}
