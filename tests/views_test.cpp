// Report views read stored cases only: hand-written records (no suite, no engine) go in, and the
// headline, charts and tables come out as a reader of the numbers would compute them.
#include <gtest/gtest.h>

#include "reports/render/views/report.h"
#include "reports/render/views/view.h"

namespace v4b {
namespace {

store::CaseRecord record(const std::string& key, nlohmann::json params, std::vector<store::Metric> metrics) {
  store::CaseRecord c;
  c.key = key;
  c.params = std::move(params);
  c.metrics = std::move(metrics);
  return c;
}

views::StoredRun run(int64_t id, const std::string& suite, std::vector<store::CaseRecord> cases) {
  views::StoredRun r;
  r.info.id = id;
  r.info.suite = suite;
  r.cases = std::move(cases);
  return r;
}

const render::Section* section(const render::Document& d, const std::string& title) {
  for (const auto& s : d.sections)
    if (s.title == title) return &s;
  return nullptr;
}

TEST(Views, HeadlineTakesFp8KvAt1MAndFlopsRatiosAcrossRuns) {
  const int64_t k1m = int64_t{1} << 20;
  const auto kv = run(1, "kv",
                      {record("a", {{"model", "v4-pro"}, {"baseline", "v3.2"}, {"ctx", k1m}, {"kv_format", "bf16"}},
                              {{"kv_bytes", 200, "bytes"}, {"kv_ratio", 0.25, "ratio"}}),
                       record("b", {{"model", "v4-pro"}, {"baseline", "v3.2"}, {"ctx", k1m}, {"kv_format", "fp8"}},
                              {{"kv_bytes", 100, "bytes"}, {"kv_ratio", 0.1, "ratio"}}),
                       record("c", {{"model", "v4-pro"}, {"baseline", "v3.2"}, {"ctx", 4096}, {"kv_format", "fp8"}},
                              {{"kv_bytes", 10, "bytes"}, {"kv_ratio", 0.5, "ratio"}})});
  const auto flops = run(2, "flops",
                         {record("d", {{"model", "v4-pro"}, {"baseline", "v3.2"}, {"ctx", k1m}},
                                 {{"flops_fp8eq", 5e9, "flop"}, {"flops_ratio", 0.27, "ratio"}, {"flops_raw_ratio", 0.3, "ratio"}})});
  const render::Document doc = views::build_report({kv, flops});
  const render::Section* head = section(doc, "Headline at 1M tokens");
  ASSERT_NE(head, nullptr);
  ASSERT_EQ(head->tables.size(), 1u);
  const render::Table& t = head->tables[0];
  EXPECT_EQ(t.columns[1].title, "KV vs v3.2");
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"v4-pro", "10.0%", "27.0%", "30.0%"}));  // the bf16 case is not the headline
  const render::Section* charts = section(doc, "KV cache and FLOPs against context");
  ASSERT_NE(charts, nullptr);
  ASSERT_EQ(charts->figures.size(), 2u);
  EXPECT_EQ(charts->figures[0].file_name, "kv_vs_ctx.svg");
  EXPECT_NE(charts->figures[0].svg.find("v4-pro fp8"), std::string::npos);
  EXPECT_NE(charts->figures[0].svg.find("v4-pro bf16"), std::string::npos);
}

TEST(Views, NoHeadlineWithout1MCases) {
  const auto kv = run(1, "kv", {record("c", {{"model", "v4-pro"}, {"ctx", 4096}, {"kv_format", "fp8"}}, {{"kv_bytes", 10, "bytes"}})});
  EXPECT_EQ(section(views::build_report({kv}), "Headline at 1M tokens"), nullptr);
}

TEST(Views, UnknownSuiteGetsTheGenericTableOfEveryMetric) {
  const auto cases = std::vector<store::CaseRecord>{record("x=1", {}, {{"alpha", 1.5, ""}, {"beta", 2, ""}}),
                                                    record("x=2", {}, {{"beta", 3, ""}})};
  const render::Table t = views::view_of("no-such-suite").table(cases);
  ASSERT_EQ(t.columns.size(), 3u);
  EXPECT_EQ(t.columns[1].title, "alpha");
  EXPECT_EQ(t.rows[0], (std::vector<std::string>{"x=1", "1.5", "2"}));
  EXPECT_EQ(t.rows[1], (std::vector<std::string>{"x=2", "", "3"}));
}

TEST(Views, FailureReasonIsTheLastSampleError) {
  store::CaseRecord c = record("k", {{"ctx", 1}}, {{"m", 1, ""}});
  c.status = "failed";
  c.samples = {{0, {{"error", "first"}}}, {1, {{"error", "HTTP 400: too long"}}}};
  EXPECT_EQ(views::failure_reason(c), "HTTP 400: too long");
  const nlohmann::json row = views::case_row(c);
  EXPECT_EQ(row["error"], "HTTP 400: too long");
  EXPECT_EQ(row["ctx"], 1);
  EXPECT_EQ(row["m"], 1.0);
}

TEST(Views, NumericsSummaryFollowsTheRunsModelOrder) {
  EXPECT_EQ(views::numerics_summary({{"models", {"v4-tiny", "gqa-tiny"}}, {"numerics", {{"gqa-tiny", "fp32"}, {"v4-tiny", "official"}}}}),
            "v4-tiny official, gqa-tiny fp32");
  EXPECT_EQ(views::numerics_summary({{"base_numerics", "fp32"}, {"cand_numerics_list", {"official"}}}), "base fp32, candidate official");
  EXPECT_EQ(views::numerics_summary({{"models", {"x"}}}), "");
}

}  // namespace
}  // namespace v4b

namespace v4b {
namespace {

// Throughput runs stored before the metrics took vLLM's names render the same as new ones.
TEST(Views, ThroughputReadsTheNamesOfOldRunsToo) {
  const auto old_case = record("concurrency=1", {}, {{"completed", 4, ""}, {"failed", 0, ""}, {"output_tok_per_s", 12.5, "tok/s"},
                                                     {"ttft_ms_median", 80, "ms"}, {"duration_s", 2, "s"}});
  const auto new_case = record("concurrency=1", {}, {{"completed", 4, ""}, {"failed", 0, ""}, {"output_throughput", 12.5, "tok/s"},
                                                     {"median_ttft_ms", 80, "ms"}, {"duration", 2, "s"}});
  const render::Table a = views::view_of("throughput").table({old_case}), b = views::view_of("throughput").table({new_case});
  ASSERT_EQ(a.rows.size(), 1u);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.rows[0][3], "12.5");  // out tok/s
  EXPECT_EQ(a.rows[0][5], "80.0");  // TTFT median
}

}  // namespace
}  // namespace v4b
