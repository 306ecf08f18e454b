// Per-sample output in lm-evaluation-harness's layout: `run ... --output-path DIR` and
// `runs export --output-path DIR | --samples` write a results JSON and one JSONL line per sample.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

using v4b::test::slurp;
using nlohmann::json;
using v4b::test::CliResult;
using v4b::test::run_cli;
using v4b::test::TempDir;

namespace {

std::vector<json> lines_of(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

TEST(OutputPath, RecallWritesResultsAndOneLinePerSample) {
  TempDir dir;
  const std::string db = (dir.path / "r.db").string(), out = (dir.path / "out").string();
  const CliResult r = run_cli("run recall --model v4-tiny --map-ids --max-new-tokens 4 --attention native --ctx 1k --depths 10,90 --n 2 --db " + db +
                              " --output-path " + out + " --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  const int64_t id = json::parse(r.out)["run_id"];
  const auto results = std::filesystem::path(out) / ("results_run" + std::to_string(id) + ".json");
  const auto samples = std::filesystem::path(out) / ("samples_recall_run" + std::to_string(id) + ".jsonl");
  ASSERT_TRUE(std::filesystem::exists(results)) << r.err;
  ASSERT_TRUE(std::filesystem::exists(samples)) << r.err;

  const json res = json::parse(slurp(results));
  EXPECT_EQ(res["id"], id);
  EXPECT_EQ(res["suite"], "recall");
  ASSERT_EQ(res["cases"].size(), 2u);  // one per depth
  EXPECT_TRUE(res["cases"][0]["metrics"].contains("accuracy"));

  const auto rows = lines_of(slurp(samples));
  ASSERT_EQ(rows.size(), 4u);  // 2 depths x 2 samples
  for (const auto& row : rows) {
    EXPECT_EQ(row["run_id"], id);
    EXPECT_EQ(row["suite"], "recall");
    EXPECT_TRUE(row["case"].get<std::string>().starts_with("task=niah|ctx=1024")) << row.dump();
    EXPECT_EQ(row["prompt_hash"].get<std::string>().size(), 16u);
    ASSERT_TRUE(row["references"].is_array());
    EXPECT_FALSE(row["references"].empty());
    EXPECT_TRUE(row["prediction"].is_string());
    const double score = row["score"];
    EXPECT_TRUE(score >= 0 && score <= 1) << score;
  }
  // The same lines from the store, afterwards.
  const CliResult exported = run_cli("runs export " + std::to_string(id) + " --samples --db " + db);
  ASSERT_EQ(exported.status, 0) << exported.err;
  EXPECT_EQ(exported.out, slurp(samples));
}

TEST(OutputPath, CodingSamplesNameTheProblemAndTheScore) {
  TempDir dir;
  const std::string db = (dir.path / "c.db").string(), out = (dir.path / "o").string();
  ASSERT_EQ(run_cli("run coding --backend oracle --dataset humaneval --limit 3 --db " + db).status, 0);
  const CliResult e = run_cli("runs export last --output-path " + out + " --db " + db);
  ASSERT_EQ(e.status, 0) << e.err;
  const auto rows = lines_of(slurp(std::filesystem::path(out) / "samples_coding_run1.jsonl"));
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& row : rows) {
    EXPECT_TRUE(row["doc_id"].get<std::string>().starts_with("HumanEval/")) << row.dump();
    EXPECT_EQ(row["score"], 1);  // the canonical solutions pass
  }
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(out) / "results_run1.json"));
}

}  // namespace
