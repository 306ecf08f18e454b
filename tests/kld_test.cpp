// Logit fidelity (evals/suites/kld): KL divergence, top-1 agreement and Δp against hand-computed
// values, .npy round trips, `v4bench generate --dump-logits` read back as a base, and bad input.
#include <cmath>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "evals/metrics/divergence.h"
#include "evals/suites/kld/kld_suite.h"
#include "evals/suites/kld/npy.h"
#include "reports/stats/stats.h"
#include "tests/test_util.h"

using namespace v4b::evals;
using nlohmann::json;
using v4b::test::expect_usage_error;
using v4b::test::run_cli;
using v4b::test::TempDir;

namespace {

std::vector<float> logs(std::initializer_list<double> probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

// The distribution the float logits actually hold (the stored logs are rounded to float).
std::vector<long double> probs(const std::vector<float>& logits) {
  long double sum = 0;
  std::vector<long double> p;
  for (float z : logits) sum += std::exp(static_cast<long double>(z));
  for (float z : logits) p.push_back(std::exp(static_cast<long double>(z)) / sum);
  return p;
}

double kl(const std::vector<float>& base, const std::vector<float>& cand) {
  const auto p = probs(base), q = probs(cand);
  long double s = 0;
  for (size_t i = 0; i < p.size(); ++i) s += p[i] * std::log(p[i] / q[i]);
  return static_cast<double>(s);
}

std::map<std::string, double> summary_map(const DivergenceStats& s) {
  std::map<std::string, double> m;
  for (const auto& [k, v] : s.summary()) m[k] = v;
  return m;
}

void write_npy(const std::string& path, const std::vector<std::vector<float>>& rows) {
  NpyWriter w(path, static_cast<int64_t>(rows.front().size()));
  for (const auto& r : rows) w.append(r);
  w.close();
}

class KldCli : public ::testing::Test {
 protected:
  TempDir dir;
  std::string env() const { return "V4BENCH_CACHE_DIR=" + (dir.path / "cache").string(); }
  v4b::test::CliResult v4(const std::string& args) { return run_cli(args + " --db " + (dir.path / "r.db").string(), env()); }
  std::string path(const std::string& name) const { return (dir.path / name).string(); }
};

}  // namespace

TEST(Kld, TwoHandComputedPositions) {
  // Position 0: base (1/2, 1/4, 1/4), candidate (1/4, 1/2, 1/4): KL = ln2/4, argmaxes differ, Δp = -1/4.
  // Position 1: base (1/2, 1/2, ~0), candidate (0.9, 0.1, ~0): KL = ln(5/3)... computed below.
  const auto b0 = logs({0.5, 0.25, 0.25}), c0 = logs({0.25, 0.5, 0.25});
  const auto b1 = logs({0.5, 0.5, 1e-30}), c1 = logs({0.9, 0.1, 1e-30});
  const PositionDivergence d0 = compare_position(b0, c0), d1 = compare_position(b1, c1);
  // Closed forms hold to float rounding of the logits (~1e-7); the exact values of the stored
  // distributions to 1e-9.
  EXPECT_NEAR(d0.kl, std::log(2.0) / 4, 1e-6);
  EXPECT_NEAR(d0.kl, kl(b0, c0), 1e-9);
  EXPECT_FALSE(d0.top1_agree);
  EXPECT_NEAR(d0.dp, double(probs(c0)[0] - probs(b0)[0]), 1e-9);
  EXPECT_NEAR(d0.dp, -0.25, 1e-6);
  EXPECT_NEAR(d1.kl, 0.5 * std::log(0.5 / 0.9) + 0.5 * std::log(0.5 / 0.1), 1e-6);
  const double kl1 = kl(b1, c1);
  EXPECT_NEAR(d1.kl, kl1, 1e-9);
  EXPECT_EQ(d1.top1_agree, probs(b1)[0] >= probs(b1)[1]);  // a tie goes to the first id
  EXPECT_NEAR(d1.dp, double(probs(c1)[0] - probs(b1)[0]), 1e-9);

  DivergenceStats s(1);
  s.add(0, d0);
  s.add(1, d1);
  auto m = summary_map(s);
  const double kl0 = kl(b0, c0), mean = (kl0 + kl1) / 2;
  EXPECT_NEAR(m["kld_mean"], mean, 1e-9);
  EXPECT_NEAR(m["kld_stderr"], std::fabs(kl1 - kl0) / 2, 1e-9);  // sample sd / sqrt(2)
  EXPECT_NEAR(m["kld_max"], std::max(kl1, kl0), 1e-9);
  EXPECT_DOUBLE_EQ(m["top1_agreement"], d1.top1_agree ? 0.5 : 0.0);
  EXPECT_NEAR(m["dp_mean"], (d0.dp + d1.dp) / 2, 1e-12);
  EXPECT_NEAR(m["dp_mean"], 0.075, 1e-6);
  EXPECT_NEAR(m["dp_rms"], std::sqrt((0.0625 + 0.16) / 2), 1e-6);
  ASSERT_EQ(s.bins().size(), 2u);
  EXPECT_EQ(s.bins()[1].first, 1);

  // The same two positions through .npy files and run_kld.
  TempDir dir;
  const std::string bp = (dir.path / "b.npy").string(), cp = (dir.path / "c.npy").string();
  write_npy(bp, {b0, b1});
  write_npy(cp, {c0, c1});
  KldRequest r;
  r.base.source = bp;
  r.cands = {LogitSide{cp}};
  const KldResult res = run_kld(r);
  EXPECT_EQ(res.positions, 2);
  ASSERT_EQ(res.stats.size(), 1u);
  EXPECT_NEAR(summary_map(res.stats[0])["kld_mean"], mean, 1e-9);
}

TEST(Stats, PercentilesInterpolateLinearly) {
  const std::vector<double> v = {0, 1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(v4b::stats::percentile(v, 50), 2);
  EXPECT_DOUBLE_EQ(v4b::stats::percentile(v, 90), 3.6);
  EXPECT_DOUBLE_EQ(v4b::stats::percentile(v, 0), 0);
  EXPECT_DOUBLE_EQ(v4b::stats::percentile(v, 100), 4);
}

TEST(Kld, NpyRoundTripAndRejectsOtherDtypes) {
  TempDir dir;
  const std::string p = (dir.path / "x.npy").string();
  write_npy(p, {{1.5f, -2.0f, 3.0f}, {4.0f, 5.0f, 6.25f}});
  NpyReader r(p);
  ASSERT_EQ(r.rows(), 2);
  ASSERT_EQ(r.cols(), 3);
  std::vector<float> rows(6);
  r.read(rows);
  EXPECT_EQ(rows, (std::vector<float>{1.5f, -2.0f, 3.0f, 4.0f, 5.0f, 6.25f}));

  // A float64 file: header says '<f8'.
  std::string bytes;
  {
    std::ifstream in(p, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto at = bytes.find("<f4");
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 3, "<f8");
  std::ofstream(p, std::ios::binary) << bytes;
  try {
    NpyReader bad(p);
    FAIL() << "expected a UsageError";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("float32"), std::string::npos) << e.what();
  }
}

TEST_F(KldCli, IdenticalConfigurationsGiveZeroAndDifferentOnesDoNot) {
  auto r = v4("kld --base v4-tiny --cand-attention native,dense --tokens 300 --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json rows = json::parse(r.out)["rows"];
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    EXPECT_EQ(row["positions"], 300) << row.dump();
    if (row["cand_attention"] == "native") {
      EXPECT_EQ(row["kld_mean"], 0.0);
      EXPECT_EQ(row["kld_max"], 0.0);
      EXPECT_EQ(row["top1_agreement"], 1.0);
    } else {  // dense differs from native once compressed rows exist
      EXPECT_GT(row["kld_mean"].get<double>(), 0.0);
      EXPECT_LT(row["kld_mean"].get<double>(), 10.0);
    }
  }
}

TEST_F(KldCli, DumpedLogitsReadBackAsBaseGiveZero) {
  const std::string npy = path("dump.npy");
  // FP32 numerics: official ones (V4's default) round activations to BF16 and FP8, where a summation
  // order difference can flip a rounding.
  auto g = run_cli("generate --model v4-tiny --numerics fp32 --prompt-ids 5,9,12,40,41,42,7,7,300 -n 4 --logprobs 2 --format json "
                   "--dump-logits " + npy, env());
  ASSERT_EQ(g.status, 0) << g.err;
  const json out = json::parse(g.out);
  EXPECT_EQ(out["dump_logits"]["rows"], 13);  // 9 prompt + 4 generated positions
  ASSERT_EQ(out["logprobs"].size(), 4u);
  EXPECT_EQ(out["logprobs"][0]["top"].size(), 2u);
  EXPECT_LE(out["logprobs"][0]["logprob"].get<double>(), 0.0);
  // The prompt plus the generated tokens, scored by the same engine against the file.
  std::string ids = "5,9,12,40,41,42,7,7,300";
  for (const auto& t : out["tokens"]) ids += "," + std::to_string(t.get<int>());
  // The decode steps run the single-token kernels, the kld side one batched prefill: equal up to
  // float summation order.
  auto k = v4("kld --base " + npy + " --cand v4-tiny --cand-numerics fp32 --ids " + ids + " --tokens 13 --format json");
  ASSERT_EQ(k.status, 0) << k.err;
  const json row = json::parse(k.out)["rows"][0];
  EXPECT_EQ(row["positions"], 13);
  EXPECT_LT(row["kld_max"].get<double>(), 1e-9);
  EXPECT_EQ(row["top1_agreement"], 1.0);

  // The prompt positions alone are the same computation: exactly zero.
  const std::string prompt_only = path("prompt.npy");
  ASSERT_EQ(run_cli("generate --model v4-tiny --prompt-ids 5,9,12,40,41,42,7,7,300 -n 0 --dump-logits " + prompt_only, env()).status, 0);
  auto k0 = v4("kld --base " + prompt_only + " --cand v4-tiny --ids 5,9,12,40,41,42,7,7,300 --format json");
  ASSERT_EQ(k0.status, 0) << k0.err;
  EXPECT_EQ(json::parse(k0.out)["rows"][0]["kld_max"], 0.0);
}

TEST_F(KldCli, AKilledRunResumesWithoutRepeatingCases) {
  const std::string args = "run kld --base v4-tiny --cand-attention native,dense --cand-kv-format bf16,fp8 --tokens 200 --format json";
  auto killed = run_cli(args + " --db " + path("r.db"), env() + " V4BENCH_TEST_KILL_AFTER_CASES=1");
  EXPECT_NE(killed.status, 0);
  auto resumed = v4("run kld --resume 1 --format json");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  const json out = json::parse(resumed.out);
  EXPECT_EQ(out["resumed"], 1);
  EXPECT_EQ(out["executed"], 3);
  ASSERT_EQ(out["rows"].size(), 4u);
  for (const auto& row : out["rows"]) EXPECT_EQ(row["kld_mean"] == 0.0, row["cand_attention"] == "native") << row.dump();
}

TEST_F(KldCli, BadInputIsAUsageError) {
  expect_usage_error(v4("kld --tokens 8"), "--base is required");
  write_npy(path("narrow.npy"), {std::vector<float>(100, 0.0f)});
  expect_usage_error(v4("kld --base " + path("narrow.npy") + " --cand v4-tiny --ids 1"), "mismatched vocabularies");
  write_npy(path("short.npy"), {std::vector<float>(512, 0.0f), std::vector<float>(512, 0.0f)});
  expect_usage_error(v4("kld --base " + path("short.npy") + " --cand v4-tiny --ids 1,2,3"), "holds 2 positions but the sequence has 3");
  expect_usage_error(v4("kld --base v4-tiny --cand v32-small --ids 1,2"), "mismatched vocabularies");
  std::ofstream(path("junk.npy")) << "not numpy";
  expect_usage_error(v4("kld --base " + path("junk.npy") + " --cand v4-tiny --ids 1"), "NumPy");
  expect_usage_error(v4("kld --base v4-tiny --tokens 0"), "--tokens");
  expect_usage_error(v4("kld --base v4-tiny --tokens lots"), "--tokens");
  expect_usage_error(v4("kld --base v4-tiny --haystack nowhere"), "unknown haystack");
  expect_usage_error(v4("kld --base gqa-tiny --cand-attention window"), "window");
  EXPECT_FALSE(std::filesystem::exists(dir.path / "r.db"));  // nothing stored
}

TEST(KldParams, RoundTripsAndPlansOneCasePerCandidateConfiguration) {
  KldParams p;
  p.base = p.cand = "v4-tiny";
  p.base_numerics = "official";
  p.cand_attentions = {"native", "dense"};
  p.cand_kv_formats = {"bf16", "fp8"};
  p.cand_numerics_list = std::vector<std::string>{"official", "fp32"};
  p.haystack = "moby_dick";
  EXPECT_EQ(KldParams::from_json(p.to_json()).to_json(), p.to_json());
  const auto cases = kld_cases(p, 7);
  ASSERT_EQ(cases.size(), 8u);
  EXPECT_EQ(cases[1].key(), "cand_attention=native|cand_kv_format=bf16|cand_numerics=fp32");
  const json stored = cases[1].to_json();
  EXPECT_EQ(stored["cand_numerics"], "fp32");
  EXPECT_EQ(stored["seed"], 7);
  EXPECT_EQ(stored["cand_attentions"], json({"native", "dense"}));  // the run's lists travel with each case
  EXPECT_EQ(KldCase::from_json(stored).key(), cases[1].key());
}

TEST(KldParams, RunsStoredBeforeNumericsKeepTheirKeysAndRanFp32) {
  const json old = {{"base", "v4-tiny"}, {"base_attention", "native"}, {"base_kv_format", "bf16"}, {"cand", "v4-tiny"},
                    {"cand_attentions", {"dense"}}, {"cand_kv_formats", {"fp8"}}, {"tokens", 64}, {"score_from", 0}, {"bin", 16},
                    {"ids", "1,2,3"}};
  const KldParams p = KldParams::from_json(old);
  EXPECT_EQ(p.to_json(), old);  // nothing added on the way back
  EXPECT_EQ(p.base_side_numerics(), "fp32");
  const auto cases = kld_cases(p, 0);
  ASSERT_EQ(cases.size(), 1u);
  EXPECT_EQ(cases[0].key(), "cand_attention=dense|cand_kv_format=fp8");
  EXPECT_EQ(cases[0].cand_numerics, "fp32");
}

TEST(KldParams, ValidateNamesTheFlag) {
  KldParams p;
  p.base = p.cand = "v4-tiny";
  p.haystack = "moby_dick";
  p.validate();
  auto bad = [&](auto change, const std::string& words) {
    KldParams q = p;
    change(q);
    v4b::test::expect_throws_usage([&] { q.validate(); }, words);
  };
  bad([](KldParams& q) { q.base.clear(); }, "--base is required");
  bad([](KldParams& q) { q.tokens = 0; }, "--tokens");
  bad([](KldParams& q) { q.score_from = q.tokens; }, "--score-from");
  bad([](KldParams& q) { q.bin = 0; }, "--bin");
  bad([](KldParams& q) { q.cand_attentions = {"sparse"}; }, "sparse");
  bad([](KldParams& q) { q.ids = "1,2"; }, "exactly one of");
  EXPECT_THROW(KldParams::from_json({{"tokens", "many"}}), v4b::UsageError);
}
