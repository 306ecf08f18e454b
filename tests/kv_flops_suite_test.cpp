// Suites `kv` and `flops` end to end: measured equals analytic on the tiny presets, projections for
// published models, the headline in the report, resume after a kill, bad input stores nothing.
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "evals/metrics/ratio.h"
#include "evals/suites/flops/scoring.h"
#include "evals/suites/kv/scoring.h"
#include "tests/test_util.h"

using nlohmann::json;
using v4b::test::expect_usage_error;
using v4b::test::run_cli;
using v4b::test::TempDir;

namespace {

class KvFlopsSuites : public ::testing::Test {
 protected:
  TempDir dir;
  std::string env() const { return "V4BENCH_CACHE_DIR=" + (dir.path / "cache").string(); }
  std::string db() const { return (dir.path / "r.db").string(); }
  v4b::test::CliResult v4(const std::string& args, const std::string& extra_env = "") {
    return run_cli(args + " --db " + db(), env() + " " + extra_env);
  }
};

}  // namespace

TEST_F(KvFlopsSuites, KvMeasuredEqualsAnalyticAndPublishedModelsAreProjected) {
  auto r = v4("run kv --model v4-tiny,v32-tiny,gqa-tiny,v4-pro --vs v3.2 --ctx 129,1k --kv-format bf16,fp8 --format json");
  ASSERT_EQ(r.status, 0) << r.err << r.out.substr(0, 2000);
  const json obj = json::parse(r.out);
  EXPECT_EQ(obj["status"], "done");
  ASSERT_EQ(obj["rows"].size(), 16u);
  for (const auto& row : obj["rows"]) {
    EXPECT_EQ(row["kv_bytes"], row["kv_bytes_analytic"]) << row.dump();
    EXPECT_GT(row["kv_bytes"].get<double>(), 0);
    EXPECT_EQ(row["projected"], row["model"] == "v4-pro" ? 1 : 0) << row.dump();
    if (row["model"] == "v4-tiny") {
      EXPECT_GT(row["kv_bytes_compressed_csa"].get<double>(), 0);
      EXPECT_GT(row["fill_s"].get<double>(), 0);
    }
  }
}

TEST_F(KvFlopsSuites, FlopsCountersWithinOnePercentAndHeadlineInReport) {
  auto r = v4("run flops --model v4-tiny,v32-tiny,gqa-tiny --ctx 300 --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json rows = json::parse(r.out)["rows"];
  for (const auto& row : rows) {
    EXPECT_NEAR(row["flops"].get<double>(), row["flops_analytic"].get<double>(), 0.01 * row["flops_analytic"].get<double>()) << row.dump();
    EXPECT_GT(row["flops_elementwise"].get<double>(), 0);
  }
  ASSERT_EQ(v4("run kv --model v4-pro,v4-flash --vs v3.2 --ctx 4k,1m --kv-format fp8").status, 0);
  ASSERT_EQ(v4("run flops --model v4-pro,v4-flash --vs v3.2 --ctx 4k,1m").status, 0);
  const auto svg = dir.path / "svg";
  auto rep = v4("report last 2 3 --svg-dir " + svg.string());
  ASSERT_EQ(rep.status, 0) << rep.err;
  EXPECT_NE(rep.out.find("Headline at 1M tokens"), std::string::npos) << rep.out;
  EXPECT_NE(rep.out.find("| v4-pro | 10.5% | 26.6% | 26.2% |"), std::string::npos) << rep.out;
  EXPECT_NE(rep.out.find("| v4-flash | 7.3% | 10.0% | 12.1% |"), std::string::npos) << rep.out;
  for (const char* f : {"kv_vs_ctx.svg", "flops_vs_ctx.svg"}) {
    std::ifstream in(svg / f);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(text.find("<polyline"), std::string::npos) << f;
    EXPECT_NE(text.find("v4-pro"), std::string::npos) << f;
  }
}

TEST_F(KvFlopsSuites, ResumeAfterKillRepeatsNothing) {
  const std::string args = "run kv --model v4-tiny --ctx 64,128,256,512 --kv-format bf16,fp8 --format json";
  auto killed = v4(args, "V4BENCH_TEST_KILL_AFTER_CASES=3");
  ASSERT_TRUE(killed.signaled) << killed.err;
  auto resumed = v4("run kv --resume 1 --format json");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  const json obj = json::parse(resumed.out);
  EXPECT_EQ(obj["resumed"], 3);
  EXPECT_EQ(obj["executed"], 5);
  std::set<std::string> keys;
  const json shown = json::parse(v4("runs show 1 --format json").out);
  for (const auto& c : shown["cases"]) keys.insert(c["key"].get<std::string>());
  EXPECT_EQ(keys.size(), 8u);
}

TEST_F(KvFlopsSuites, BadInputStoresNothing) {
  expect_usage_error(v4("run kv --model v4-tiny --ctx 128k"), "beyond the maximum of v4-tiny");
  expect_usage_error(v4("run kv --model v9 --ctx 4k"), "v9");
  expect_usage_error(v4("run flops --model v4-tiny --ctx 0"), "'0'");
  expect_usage_error(v4("run kv --model v4-tiny --ctx -5"), "-5");
  expect_usage_error(v4("run kv --model v4-tiny --ctx 4k --kv-format fp16"), "fp16");
  EXPECT_FALSE(std::filesystem::exists(db()));
}

TEST(KvFlopsScoring, KvMustMatchToTheByteAndNamesEachDifferingKind) {
  v4b::KvBytes analytic;
  analytic[v4b::KvKind::kWindow] = 1000, analytic[v4b::KvKind::kCompressedCsa] = 250, analytic[v4b::KvKind::kCompressorState] = 64;
  v4b::KvBytes measured = analytic;
  EXPECT_EQ(v4b::evals::kv::kv_mismatch(measured, analytic), "");
  measured[v4b::KvKind::kWindow] = 1001, measured[v4b::KvKind::kCompressorState] = 0;
  EXPECT_EQ(v4b::evals::kv::kv_mismatch(measured, analytic), "window measured 1001 vs analytic 1000; compressor_state measured 0 vs analytic 64");
}

TEST(KvFlopsScoring, FlopsWithinOnePercentPerCategoryElementwiseExempt) {
  v4b::DecodeFlops analytic;
  analytic[v4b::FlopCategory::kWeightGemm] = 100000, analytic[v4b::FlopCategory::kAttentionCore] = 5000;
  v4b::DecodeFlops counted = analytic;
  counted[v4b::FlopCategory::kWeightGemm] = 100999;  // +0.999%
  counted[v4b::FlopCategory::kElementwise] = 777;    // no analytic term: never a mismatch
  EXPECT_EQ(v4b::evals::flops::flops_mismatch(counted, analytic), "");
  counted[v4b::FlopCategory::kAttentionCore] = 5051;  // +1.02%
  const std::string m = v4b::evals::flops::flops_mismatch(counted, analytic);
  EXPECT_NE(m.find("counted 5051 vs analytic 5000"), std::string::npos) << m;
  EXPECT_EQ(m.find("100999"), std::string::npos) << m;
  EXPECT_DOUBLE_EQ(v4b::evals::ratio(27, 100), 0.27);
  EXPECT_EQ(v4b::evals::ratio(5, 0), 0);  // a baseline without that cache
}
