// The regression gate: statistics against hand-computed values, and `v4bench compare` on stored
// runs — noise passes, an injected regression fails naming its metric, mismatched runs are flagged.
#include <cmath>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reports/stats/stats.h"
#include "reports/store/store.h"
#include "tests/test_util.h"

using nlohmann::json;
using namespace v4b;
using v4b::test::expect_usage_error;
using v4b::test::run_cli;
using v4b::test::TempDir;

TEST(Stats, McNemarExactMatchesTheBinomialTail) {
  EXPECT_DOUBLE_EQ(stats::mcnemar_exact_p(0, 0), 1.0);
  EXPECT_NEAR(stats::mcnemar_exact_p(1, 6), 2.0 * (1 + 7) / 128, 1e-12);  // 2 * P[Binom(7, 1/2) <= 1]
  EXPECT_NEAR(stats::mcnemar_exact_p(6, 1), 0.125, 1e-12);                // symmetric
  EXPECT_NEAR(stats::mcnemar_exact_p(0, 5), 2.0 / 32, 1e-12);
  EXPECT_DOUBLE_EQ(stats::mcnemar_exact_p(3, 3), 1.0);  // capped
  EXPECT_NEAR(stats::mcnemar_exact_p(8, 0), 2.0 / 256, 1e-12);
  EXPECT_NEAR(stats::mcnemar_exact_p(0, 40), 2 * std::pow(0.5, 40), 1e-20);
}

TEST(Stats, PairedBootstrapIsSeededAndCentred) {
  const std::vector<double> constant(50, 0.25);
  const auto c = stats::bootstrap_mean(constant, 1);
  EXPECT_DOUBLE_EQ(c.mean, 0.25);
  EXPECT_DOUBLE_EQ(c.lo, 0.25);
  EXPECT_DOUBLE_EQ(c.hi, 0.25);
  EXPECT_DOUBLE_EQ(c.p_two_sided, 0.0);  // every resample is above zero

  std::vector<double> noise;
  std::mt19937 rng(3);
  std::normal_distribution<double> n(0, 1);
  for (int i = 0; i < 200; ++i) noise.push_back(n(rng));
  const auto a = stats::bootstrap_mean(noise, 7), b = stats::bootstrap_mean(noise, 7), other = stats::bootstrap_mean(noise, 8);
  EXPECT_EQ(a.lo, b.lo);
  EXPECT_EQ(a.hi, b.hi);
  EXPECT_NE(a.lo, other.lo);  // the seed matters
  EXPECT_LT(a.lo, a.mean);
  EXPECT_GT(a.hi, a.mean);
  EXPECT_NEAR(a.hi - a.lo, 2 * 1.96 / std::sqrt(200.0), 0.08);  // ~ the normal-theory width
}

TEST(Stats, MannWhitneyAgainstHandComputedCases) {
  // Complete separation, n1 = n2 = 3: U = 0, mu = 4.5, var = 3*3/12 * 7 = 5.25, z = -(4.5 - 0.5)/sqrt(5.25).
  const auto r = stats::mann_whitney({1, 2, 3}, {4, 5, 6});
  EXPECT_DOUBLE_EQ(r.u, 0);
  EXPECT_NEAR(r.z, -4.0 / std::sqrt(5.25), 1e-12);
  EXPECT_NEAR(r.p_two_sided, std::erfc(4.0 / std::sqrt(5.25) / std::sqrt(2.0)), 1e-12);
  EXPECT_NEAR(r.p_two_sided, 0.0809, 5e-4);
  // Ties: x = {1, 2, 2}, y = {2, 3}: ranks 1, 3, 3 | 3, 5 -> R1 = 7, U = 1; tie term 3^3 - 3 = 24;
  // var = 6/12 * (6 - 24/20) = 2.4; z = -(2 - 0.5)/sqrt(2.4).
  const auto t = stats::mann_whitney({1, 2, 2}, {2, 3});
  EXPECT_DOUBLE_EQ(t.u, 1);
  EXPECT_NEAR(t.z, -1.5 / std::sqrt(2.4), 1e-12);
  EXPECT_DOUBLE_EQ(stats::mann_whitney({2, 2}, {2, 2}).p_two_sided, 1.0);
}

namespace {

class Gate : public ::testing::Test {
 protected:
  TempDir dir;
  std::string db() const { return (dir.path / "r.db").string(); }
  std::string gate_path() const { return (dir.path / "gate.json").string(); }

  void write_gate() {
    std::ofstream(gate_path()) << json{{"rules",
                                        {{{"metric", "accuracy"}, {"suite", "recall"}, {"direction", "higher"}, {"min_effect", 0.05},
                                          {"test", "mcnemar"}, {"sample_field", "correct"}, {"group_by", {"depth"}}},
                                         {{"metric", "pass_at_1"}, {"suite", "coding"}, {"direction", "higher"}, {"abs_tol", 0.02},
                                          {"test", "mcnemar"}, {"sample_field", "pass"}, {"pair_by", "task_id"}, {"group_by", {"*"}}}}}}
                                      .dump();
  }

  // A recall-like run: depths x contexts, 40 samples each, correct with probability 0.9 (seeded);
  // `hurt_depth` loses half of its correct answers.
  int64_t recall_run(uint64_t seed, int hurt_depth = -1, const std::string& model = "v4-probe") {
    store::Store s(db());
    const int64_t id = s.create_run({"recall", model, {{"task", "niah"}, {"ctx", {4096, 8192}}, {"seed", seed}}, "test", {}, seed});
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::bernoulli_distribution ok(0.9);
    for (int depth : {0, 25, 50, 75, 100})
      for (int ctx : {4096, 8192}) {
        store::CaseRecord c;
        c.key = fmt::format("ctx={}|depth={}", ctx, depth);
        c.params = {{"ctx", ctx}, {"depth", depth}};
        int right = 0;
        for (int i = 0; i < 40; ++i) {
          bool correct = ok(rng);
          if (depth == hurt_depth && correct && i % 2 == 0) correct = false;
          right += correct;
          c.samples.push_back({i, {{"correct", correct}}});
        }
        c.metrics.push_back({"accuracy", right / 40.0, ""});
        s.commit_case(id, c);
      }
    s.set_run_status(id, "done");
    return id;
  }

  // A coding-like run over 164 problems, stored as the coding suite does: per-problem samples in
  // chunk cases, pass@1 in a summary case. Problem i passes when i % 5 < 3 (60%), minus `dropped`.
  int64_t coding_run(int dropped) {
    store::Store s(db());
    const int64_t id = s.create_run({"coding", "oracle", {{"dataset", "humaneval"}}, "test", {}, 0});
    int passed = 0, flipped = 0;
    for (int chunk = 0; chunk < 2; ++chunk) {
      store::CaseRecord c;
      c.key = fmt::format("dataset=humaneval|chunk={}", chunk);
      c.params = {{"dataset", "humaneval"}, {"chunk", chunk}};
      for (int i = chunk * 82; i < (chunk + 1) * 82; ++i) {
        bool p = i % 5 < 3;
        if (p && flipped < dropped) p = false, ++flipped;
        passed += p;
        c.samples.push_back({i, {{"task_id", fmt::format("HumanEval/{}", i)}, {"pass", p}}});
      }
      c.metrics.push_back({"passed", 0.0 + passed, ""});
      s.commit_case(id, c);
    }
    store::CaseRecord summary;
    summary.key = "summary";
    summary.params = json::object();
    summary.metrics.push_back({"pass_at_1", passed / 164.0, ""});
    s.commit_case(id, summary);
    s.set_run_status(id, "done");
    return id;
  }

  test::CliResult compare(int64_t a, int64_t b, const std::string& extra = "") {
    return run_cli(fmt::format("compare {} {} --db {} --gate {} {}", a, b, db(), gate_path(), extra));
  }
};

}  // namespace

TEST_F(Gate, SameConfigurationWithDifferentSeedsPasses) {
  write_gate();
  const auto a = recall_run(1), b = recall_run(2);
  const auto r = compare(a, b);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("PASS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("depth=50"), std::string::npos) << r.out;  // one check per depth band
}

TEST_F(Gate, ARecallDropInOneDepthBandFailsNamingTheMetric) {
  write_gate();
  const auto a = recall_run(1), b = recall_run(1, /*hurt_depth=*/50);
  const auto r = compare(a, b, "--format json");
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  const json j = json::parse(r.out);
  EXPECT_TRUE(j["regressed"].get<bool>());
  int failed = 0;
  for (const auto& ck : j["checks"])
    if (ck["regressed"].get<bool>()) {
      ++failed;
      EXPECT_EQ(ck["metric"], "accuracy");
      EXPECT_EQ(ck["group"], "depth=50");
      EXPECT_LT(ck["p"].get<double>(), 0.05);
      EXPECT_NE(ck["why"].get<std::string>().find("accuracy fell"), std::string::npos);
    }
  EXPECT_EQ(failed, 1);
  const auto md = compare(a, b, "--out " + (dir.path / "summary.md").string());
  EXPECT_EQ(md.status, 1);
  EXPECT_NE(md.out.find("REGRESSION"), std::string::npos);
  EXPECT_NE(md.out.find("**accuracy** (depth=50)"), std::string::npos) << md.out;
  EXPECT_TRUE(std::filesystem::exists(dir.path / "summary.md"));
}

TEST_F(Gate, AFivePointPassAt1DropOn164ProblemsFails) {
  write_gate();
  const auto base = coding_run(0), same = coding_run(0), worse = coding_run(8);  // 8/164 = 4.9 points
  EXPECT_EQ(compare(base, same).status, 0);
  const auto r = compare(base, worse);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("**pass_at_1**"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mcnemar p = 0.00781"), std::string::npos) << r.out;  // 2 * 0.5^8
  const auto small = coding_run(2);                                         // 1.2 points: within abs_tol
  EXPECT_EQ(compare(base, small).status, 0);
}

TEST_F(Gate, DifferentModelsAreNotComparedSilently) {
  write_gate();
  const auto a = recall_run(1), b = recall_run(1, -1, "gqa-probe");
  const auto r = compare(a, b);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("NOT COMPARABLE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model: v4-probe vs gqa-probe"), std::string::npos) << r.out;
  EXPECT_EQ(compare(a, b, "--allow-mismatch").status, 0);
}

TEST_F(Gate, BadInputIsAUsageError) {
  const auto a = recall_run(1);
  const auto c = coding_run(0);
  std::ofstream(gate_path()) << R"({"rules": [{"metric": "accuracy", "test": "t-test", "sample_field": "x"}]})";
  expect_usage_error(compare(a, a), "t-test");
  std::ofstream(gate_path()) << R"({"rules": [{"metric": "accuracy", "tolerance": 1}]})";
  expect_usage_error(compare(a, a), "unknown key 'tolerance'");
  write_gate();
  expect_usage_error(compare(a, c), "compare runs of one suite");
  expect_usage_error(compare(a, 999), "run 999 is not in");
  expect_usage_error(run_cli(fmt::format("compare {} {} --db {}", a, a, (dir.path / "none.db").string())), "no results database");
}
