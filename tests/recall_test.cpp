// Suite `recall`: generators (determinism across runs and thread counts, budgets, needle placement),
// RULER scoring and the paired statistics, the heatmap, and the CLI end to end on the tiny preset
// (paired modes, resume after a kill, usage errors, the HTTP backend against an in-process server).
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "evals/metrics/divergence.h"
#include "evals/backends/base_url.h"
#include "evals/backends/token_codec.h"
#include "evals/suites/recall/generators.h"
#include "evals/suites/recall/recall_params.h"
#include "evals/suites/recall/recall_suite.h"
#include "evals/suites/recall/scoring.h"
#include "reports/render/heatmap.h"
#include "reports/render/views/view.h"
#include "reports/stats/stats.h"
#include "reports/store/store.h"
#include "tests/test_util.h"

using nlohmann::json;
using v4b::test::expect_usage_error;
using v4b::test::run_cli;
using v4b::test::TempDir;
namespace rc = v4b::evals::recall;

namespace {

const v4b::evals::LocalCodec& tokenizer() {
  static const v4b::evals::LocalCodec tok(v4b::Tokenizer::load());
  return tok;
}

std::vector<rc::SampleSpec> all_task_specs(int64_t ctx, uint64_t seed, int samples) {
  std::vector<rc::SampleSpec> specs;
  for (const auto& t : rc::recall_tasks())
    for (int i = 0; i < samples; ++i) specs.push_back({t.name, ctx, t.name == "niah" ? 37.0 : -1.0, i, seed, 0});
  return specs;
}

bool token_ends_sentence(const std::string& bytes) {
  std::string t = bytes;
  while (!t.empty() && (std::isspace(static_cast<unsigned char>(t.back())) || t.back() == '"' || t.back() == '\'' || t.back() == ')'))
    t.pop_back();
  return !t.empty() && (t.back() == '.' || t.back() == '!' || t.back() == '?');
}

}  // namespace

TEST(RecallScoring, StringMatchAllAndPartAsRulerDefinesThem) {
  const std::vector<std::string> refs = {"1234567", "Dusty-Ocean", "nowhere"};
  EXPECT_DOUBLE_EQ(rc::string_match_all("  the values are 1234567 and dusty-ocean\n", refs), 2.0 / 3);
  EXPECT_DOUBLE_EQ(rc::string_match_part("the values are 1234567", refs), 1.0);  // any reference, not a fraction
  EXPECT_DOUBLE_EQ(rc::string_match_part("none of them", refs), 0.0);
  EXPECT_DOUBLE_EQ(rc::string_match_all("", refs), 0.0);
  // Control characters become newlines after stripping, so they cannot join or split a reference.
  EXPECT_EQ(rc::normalize_prediction("\t a\x01" "b \n"), "a\nb");
  EXPECT_DOUBLE_EQ(rc::string_match_all("a\x01" "b", {"a b"}), 0.0);
}

TEST(RecallScoring, McNemarExactBelow25DiscordantElseChiSquare) {
  EXPECT_DOUBLE_EQ(v4b::stats::mcnemar_exact_p(0, 0), 1.0);
  EXPECT_NEAR(v4b::stats::mcnemar_exact_p(0, 6), 2.0 / 64, 1e-12);              // 2 * P(X <= 0), X ~ Bin(6, 1/2)
  EXPECT_NEAR(v4b::stats::mcnemar_exact_p(5, 1), 2.0 * 7 / 64, 1e-12);          // symmetric in b and c
  EXPECT_NEAR(v4b::stats::mcnemar_exact_p(12, 12), 1.0, 1e-12);
  EXPECT_NEAR(v4b::stats::mcnemar_exact_p(10, 30), 0.0022214337732, 1e-12);       // 2 * P[Bin(40, 1/2) <= 10], exact
}

TEST(RecallScoring, EffectiveLengthIsTheLargestLengthAboveThreshold) {
  EXPECT_EQ(v4b::stats::effective_length({{4096, 92.0}, {8192, 86.0}, {16384, 80.0}}), 8192);
  EXPECT_EQ(v4b::stats::effective_length({{4096, 85.6}, {8192, 40.0}}), 0);  // must exceed 85.6
  EXPECT_EQ(v4b::stats::effective_length({{4096, 80.0}, {8192, 90.0}}), 8192);
}

TEST(RecallScoring, KlDivergenceTopOneAndBlockDistance) {
  const std::vector<float> p = {0.f, 0.f}, q = {0.f, static_cast<float>(std::log(3.0))};
  const auto d = v4b::evals::compare_position(p, q);  // (1/2, 1/2) vs (1/4, 3/4)
  EXPECT_NEAR(d.kl, 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3), 1e-6);
  EXPECT_FALSE(d.top1_agree);
  const auto same = v4b::evals::compare_position(q, q);
  EXPECT_NEAR(same.kl, 0, 1e-12);
  EXPECT_TRUE(same.top1_agree);
  EXPECT_EQ(rc::block_distance(130, 128), 2);
  EXPECT_EQ(rc::block_distance(127, 128), 1);
  EXPECT_EQ(rc::block_distance(64, 128), 64);
  EXPECT_EQ(rc::block_distance(7, 4), 1);
}

TEST(RecallScoring, DepthSpacingsLinearAndSigmoid) {
  EXPECT_EQ(rc::depth_points(5, false), (std::vector<double>{0, 25, 50, 75, 100}));
  const auto s = rc::depth_points(5, true);
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0], 0);
  EXPECT_EQ(s[4], 100);
  EXPECT_NEAR(s[1], 7.586, 1e-9);  // 100 / (1 + e^2.5), rounded to 3 decimals
  EXPECT_NEAR(s[2], 50, 1e-9);
  EXPECT_NEAR(s[3], 92.414, 1e-9);
}

TEST(RecallScoring, TaskListsExpand) {
  EXPECT_EQ(rc::expand_tasks("ruler").size(), 11u);
  EXPECT_EQ(rc::expand_tasks("niah,vt,niah"), (std::vector<std::string>{"niah", "vt"}));
  EXPECT_THROW(rc::expand_tasks("niah,qa_9"), v4b::UsageError);
}

TEST(RecallGenerators, ByteIdenticalAcrossRunsAndThreadCounts) {
  const rc::Generator a(tokenizer(), rc::niah_template("default")), b(tokenizer(), rc::niah_template("default"));
  const auto specs = all_task_specs(2048, 7, 2);
  const auto one = a.generate_all(specs, 1), three = b.generate_all(specs, 3);
  ASSERT_EQ(one.size(), specs.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i].prompt, three[i].prompt) << specs[i].task;
    EXPECT_EQ(one[i].ids, three[i].ids) << specs[i].task;
    EXPECT_EQ(one[i].needle_tokens, three[i].needle_tokens) << specs[i].task;
    EXPECT_EQ(one[i].references, three[i].references) << specs[i].task;
  }
  // Samples of a cell differ from each other, and another seed gives other prompts.
  EXPECT_NE(one[0].prompt, one[1].prompt);
  auto other = specs;
  for (auto& s : other) s.seed = 8;
  const auto reseeded = a.generate_all(other, 2);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_NE(one[i].prompt_hash, reseeded[i].prompt_hash) << specs[i].task;
}

TEST(RecallGenerators, EveryPromptFitsItsBudgetAndFillsIt) {
  const rc::Generator gen(tokenizer(), rc::niah_template("default"));
  for (int64_t ctx : {1024, 4096}) {
    for (const auto& s : gen.generate_all(all_task_specs(ctx, 3, 2), 0)) {
      const int64_t used = static_cast<int64_t>(s.ids.size()) + s.max_new_tokens;
      EXPECT_LE(used, ctx) << s.spec.task;
      EXPECT_GE(used, ctx * 9 / 10) << s.spec.task << ": the haystack should fill the budget";
      EXPECT_EQ(s.max_new_tokens, rc::task_info(s.spec.task).max_new_tokens);
      // The ids are exactly what the text tokenises to, after BOS.
      EXPECT_EQ(s.ids.front(), *tokenizer().bos_id());
      EXPECT_EQ(tokenizer().decode({s.ids.data() + 1, s.ids.size() - 1}), s.prompt) << s.spec.task;
      ASSERT_FALSE(s.references.empty());
      for (const auto& r : s.references) EXPECT_NE(s.prompt.find(r), std::string::npos) << s.spec.task << " lacks " << r;
    }
  }
}

TEST(RecallGenerators, NeedleTokenOffsetsPointAtTheNeedles) {
  const rc::Generator gen(tokenizer(), rc::niah_template("default"));
  for (const auto& s : gen.generate_all(all_task_specs(3000, 11, 2), 0)) {
    if (s.spec.task == "cwe" || s.spec.task == "fwe") {
      EXPECT_EQ(s.needle_token, -1);
      continue;
    }
    ASSERT_GE(s.needle_token, 1) << s.spec.task;
    const std::string at = tokenizer().decode({s.ids.data() + s.needle_token, 6});
    const std::string lead = s.spec.task == "vt" ? "VAR" : "One of the special magic";
    EXPECT_EQ(at.find_first_not_of(" \n"), at.find(lead.substr(0, 3))) << s.spec.task << ": '" << at << "'";
    // The first answer needle carries the first reference.
    const std::string needle_text = tokenizer().decode({s.ids.data() + s.needle_token, std::min<size_t>(90, s.ids.size() - s.needle_token)});
    EXPECT_NE(needle_text.find(s.references[0]), std::string::npos) << s.spec.task << ": " << needle_text;
    EXPECT_GE(s.needle_depth, 0);
    EXPECT_LE(s.needle_depth, 100);
  }
}

TEST(RecallGenerators, NiahNeedleLandsAtTheRequestedDepthWithinOneSentence) {
  const rc::Generator gen(tokenizer(), rc::niah_template("default"));
  std::vector<rc::SampleSpec> specs;
  for (double d : rc::depth_points(11, false))
    for (int i = 0; i < 2; ++i) specs.push_back({"niah", 4096, d, i, 5, 0});
  for (const auto& s : gen.generate_all(specs, 0)) {
    ASSERT_GE(s.needle_token, 1);
    ASSERT_GE(s.needle_target, s.needle_token);
    // The needle follows a sentence end (or opens the haystack) ...
    const std::string before = tokenizer().piece(s.ids[s.needle_token - 1]);
    const bool opens = s.spec.depth == 0 || s.needle_token == s.needle_target;
    EXPECT_TRUE(opens || token_ends_sentence(before)) << "depth " << s.spec.depth << " after '" << before << "'";
    // ... and no sentence ends between it and the requested offset: it moved back at most one sentence.
    const int64_t after = s.needle_token + s.needle_length;
    for (int64_t k = 0; k < s.needle_target - s.needle_token - 1; ++k)
      EXPECT_FALSE(token_ends_sentence(tokenizer().piece(s.ids[after + k]))) << "depth " << s.spec.depth;
    EXPECT_NEAR(s.needle_depth, s.spec.depth, 5) << "depth " << s.spec.depth;
    EXPECT_NE(tokenizer().decode({s.ids.data() + s.needle_token, static_cast<size_t>(s.needle_length)}).find(s.references[0]),
              std::string::npos);
  }
}

TEST(RecallGenerators, NiahSampleKeepsItsHaystackAndValueAcrossDepths) {
  const rc::Generator gen(tokenizer(), rc::niah_template("default"));
  const auto top = gen.generate({"niah", 1024, 0, 1, 9, 0}), bottom = gen.generate({"niah", 1024, 100, 1, 9, 0});
  EXPECT_EQ(top.references, bottom.references);
  EXPECT_EQ(top.ids.size(), bottom.ids.size());
  EXPECT_NE(top.prompt, bottom.prompt);
  // Removing the needle leaves the same haystack.
  auto strip = [](const rc::RecallSample& s) {
    std::vector<int32_t> ids = s.ids;
    ids.erase(ids.begin() + s.needle_token, ids.begin() + s.needle_token + s.needle_length);
    return ids;
  };
  EXPECT_EQ(strip(top), strip(bottom));
  EXPECT_NE(gen.generate({"niah", 1024, 0, 2, 9, 0}).references, top.references);
}

TEST(RecallGenerators, ProbeTemplateEndsWithTheNeedlesLeadIn) {
  const rc::Generator gen(tokenizer(), rc::niah_template("probe"));
  const auto s = gen.generate({"niah", 2048, 50, 0, 1, 0});
  const std::string lead = " The special magic number for ";
  const size_t needle_at = s.prompt.find(lead);
  ASSERT_NE(needle_at, std::string::npos);
  // The prompt's tail repeats the needle up to its value, token for token.
  const std::string needle = s.prompt.substr(needle_at, s.prompt.find(s.references[0], needle_at) - needle_at);
  ASSERT_EQ(needle.back(), ' ');
  EXPECT_EQ(s.prompt.substr(s.prompt.size() - (needle.size() - 1)), needle.substr(0, needle.size() - 1));
  const auto lead_ids = tokenizer().encode(needle.substr(0, needle.size() - 1));
  EXPECT_TRUE(std::equal(lead_ids.begin(), lead_ids.end(), s.ids.end() - static_cast<long>(lead_ids.size())));
  EXPECT_TRUE(std::equal(lead_ids.begin(), lead_ids.end(), s.ids.begin() + s.needle_token));
}

TEST(RecallGenerators, BudgetTooSmallForTheNeedleIsAUsageError) {
  const rc::Generator gen(tokenizer(), rc::niah_template("default"));
  EXPECT_THROW(gen.check_budget("niah_multikey_3", 150), v4b::UsageError);
  EXPECT_THROW(gen.check_budget("niah", 60), v4b::UsageError);
  EXPECT_THROW(gen.generate({"niah", 60, 50, 0, 1, 0}), v4b::UsageError);
  EXPECT_THROW(gen.generate({"niah", 4096, 101, 0, 1, 0}), v4b::UsageError);
  EXPECT_NO_THROW(gen.check_budget("niah_multikey_3", 1024));
}

TEST(RecallHeatmap, CellsValuesAndMissing) {
  const std::string svg = v4b::render::heatmap_svg({"acc <native>", "ctx", "depth"}, {"4k", "16k"}, {"0%", "100%"},
                                                   {{100, 50}, {0, std::nan("")}});
  size_t cells = 0;
  for (size_t p = 0; (p = svg.find("class=\"cell\"", p)) != std::string::npos; ++p) ++cells;
  EXPECT_EQ(cells, 4u);
  EXPECT_NE(svg.find("acc &lt;native&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">50<"), std::string::npos);
  EXPECT_NE(svg.find("#d9d9d9"), std::string::npos);  // the missing cell
  EXPECT_NE(svg.find("#1a9850"), std::string::npos);  // 100: green
  EXPECT_NE(svg.find("#d73027"), std::string::npos);  // 0: red
}

namespace {

class RecallCli : public ::testing::Test {
 protected:
  TempDir dir;
  std::string env() const { return "V4BENCH_CACHE_DIR=" + (dir.path / "cache").string(); }
  std::string db(const std::string& name = "r.db") const { return (dir.path / name).string(); }
  v4b::test::CliResult v4(const std::string& args, const std::string& extra_env = "", const std::string& name = "r.db") {
    return run_cli(args + " --db " + db(name), env() + " " + extra_env);
  }
};

}  // namespace

TEST_F(RecallCli, PairedModesOnTheSameWeightsWithHeatmaps) {
  auto r = v4("run recall --model v4-tiny --map-ids --ctx 300,400 --depths 0,100 --n 2 --max-new-tokens 4 "
              "--attention native,dense,window --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json rows = json::parse(r.out)["rows"];
  ASSERT_EQ(rows.size(), 2u * 2 * 4);  // ctx x depth x (3 modes + the pair)
  int pairs = 0;
  for (const auto& row : rows) {
    if (row["attention"] == "native-dense") {
      ++pairs;
      EXPECT_GE(row["mcnemar_p"].get<double>(), 0);
      EXPECT_LE(row["mcnemar_p"].get<double>(), 1);
      EXPECT_GE(row["kl_native_dense"].get<double>(), 0);
      EXPECT_GE(row["top1_agreement"].get<double>(), 0);
      EXPECT_LE(row["top1_agreement"].get<double>(), 1);
      EXPECT_DOUBLE_EQ(row["accuracy_diff"].get<double>(), row["accuracy_native"].get<double>() - row["accuracy_dense"].get<double>());
    } else {
      EXPECT_EQ(row["n_samples"], 2);
      EXPECT_LE(row["prompt_tokens"].get<double>() + 4, row["ctx"].get<double>());
    }
  }
  EXPECT_EQ(pairs, 4);
  // Samples carry the needle offset and its distance to the CSA (4) and HCA (128) block boundaries.
  v4b::store::Store store(db());
  for (const auto& c : store.cases(1))
    for (const auto& s : c.samples) {
      const int64_t t = s.details.at("needle_token");
      EXPECT_EQ(s.details.at("csa_block_dist"), v4b::evals::recall::block_distance(t, 4)) << c.key;
      EXPECT_EQ(s.details.at("hca_block_dist"), v4b::evals::recall::block_distance(t, 128)) << c.key;
      if (s.details.contains("prompt_ids")) {
        EXPECT_EQ(s.details.at("needle_tokens_back"), s.details.at("prompt_ids").get<int64_t>() - t);
      }
    }
  const auto svg = dir.path / "svg";
  auto rep = v4("report last --svg-dir " + svg.string());
  ASSERT_EQ(rep.status, 0) << rep.err;
  for (const char* f : {"recall_1_native.svg", "recall_1_dense.svg", "recall_1_window.svg", "recall_1_native_minus_dense.svg"}) {
    std::ifstream in(svg / f);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(text.find("class=\"cell\""), std::string::npos) << f;
    EXPECT_NE(text.find(">400<"), std::string::npos) << f;
  }
}

TEST_F(RecallCli, ResumeAfterKillMatchesAnUninterruptedRun) {
  const std::string args = "run recall --tasks niah,niah_single_1 --model v4-tiny --map-ids --ctx 320 --depths 25,75 --n 2 "
                           "--max-new-tokens 3 --attention native,dense --format json";
  auto killed = v4(args, "V4BENCH_TEST_KILL_AFTER_CASES=4");
  ASSERT_TRUE(killed.signaled) << killed.err;
  auto resumed = v4("run recall --resume 1 --format json");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  const json obj = json::parse(resumed.out);
  EXPECT_EQ(obj["resumed"], 4);
  EXPECT_EQ(obj["executed"], 5);  // 3 cells x 3 cases
  auto whole = v4(args + " --threads 1", "", "whole.db");
  ASSERT_EQ(whole.status, 0) << whole.err;
  // Same prompts (by hash) and same answers in another process, after a kill, with other thread counts.
  v4b::store::Store a(db()), b(db("whole.db"));
  const auto ca = a.cases(1), cb = b.cases(1);
  ASSERT_EQ(ca.size(), cb.size());
  std::map<std::string, const v4b::store::CaseRecord*> by_key;
  for (const auto& c : cb) by_key[c.key] = &c;
  for (const auto& c : ca) {
    ASSERT_TRUE(by_key.count(c.key)) << c.key;
    const auto& other = *by_key[c.key];
    ASSERT_EQ(c.samples.size(), other.samples.size()) << c.key;
    for (size_t i = 0; i < c.samples.size(); ++i) {
      EXPECT_EQ(c.samples[i].details.value("prompt_hash", ""), other.samples[i].details.value("prompt_hash", "")) << c.key;
      EXPECT_EQ(c.samples[i].details.value("prediction", ""), other.samples[i].details.value("prediction", "")) << c.key;
    }
  }
}

TEST_F(RecallCli, BadParametersAreOneLineUsageErrorsAndStoreNothing) {
  const std::string base = "run recall --model v4-tiny --map-ids ";
  expect_usage_error(v4(base + "--ctx 512 --depths 0,120"), "outside 0-100");
  expect_usage_error(v4(base + "--ctx 512 --depths=-5"), "outside 0-100");
  expect_usage_error(v4("run recall --model v4-tiny --map-ids --ctx 128k"), "beyond the maximum of v4-tiny");
  expect_usage_error(v4(base + "--tasks niah_multikey_3 --ctx 150"), "too small for task niah_multikey_3");
  expect_usage_error(v4(base + "--ctx 60"), "too small for task niah");
  expect_usage_error(v4(base + "--ctx 512 --tasks niah_single_9"), "unknown recall task 'niah_single_9'");
  expect_usage_error(v4("run recall --model v4-tiny --ctx 512"), "vocabulary of 512");
  expect_usage_error(v4("run recall --model gqa-tiny --map-ids --ctx 512 --attention native,window"), "window needs a DeepSeek-V4");
  expect_usage_error(v4(base + "--ctx 512 --attention native,sparse"), "sparse");
  expect_usage_error(v4("run recall --backend http --model m --ctx 512"), "--base-url");
  expect_usage_error(v4("run recall --ctx 512"), "--model");
  EXPECT_FALSE(std::filesystem::exists(db())) << "a usage error must store nothing";
}

TEST_F(RecallCli, HttpBackendUsesTheServersUsageAndNeverStoresTheKey) {
  httplib::Server server;
  std::atomic<int> requests{0};
  std::string auth_seen;
  server.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    ++requests;
    auth_seen = req.get_header_value("Authorization");
    const json body = json::parse(req.body);
    // An oracle that reads the needle: answers with the value after "is: ".
    std::smatch m;
    const std::string prompt = body.at("prompt");
    const bool found = std::regex_search(prompt, m, std::regex("numbers for \\S+ is: ([0-9]+)\\."));
    const json reply = {{"choices", {{{"text", found ? " " + m[1].str() + "." : " no idea"}}}},
                        {"usage", {{"prompt_tokens", 1234}, {"completion_tokens", 3}}}};
    res.set_content(reply.dump(), "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread th([&] { server.listen_after_bind(); });
  auto r = v4(fmt::format("run recall --backend http --base-url http://127.0.0.1:{}/v1 --model served --tasks niah --ctx 1k "
                          "--depths 10,90 --n 2 --attention native --format json",
                          port),
              "V4BENCH_API_KEY=sekrit");
  server.stop();
  th.join();
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(requests.load(), 4);
  EXPECT_EQ(auth_seen, "Bearer sekrit");
  for (const auto& row : json::parse(r.out)["rows"]) {
    EXPECT_EQ(row["accuracy"], 100.0);
    EXPECT_EQ(row["prompt_tokens"], 1234.0);
    EXPECT_EQ(row["completion_tokens"], 3.0);
  }
  auto shown = v4("runs show last --format json");
  ASSERT_EQ(shown.status, 0);
  EXPECT_EQ(shown.out.find("sekrit"), std::string::npos);
  EXPECT_NE(shown.out.find("127.0.0.1"), std::string::npos);
}

TEST(RecallTable, RulerAverageAndEffectiveLengthPerAttentionMode) {
  std::vector<v4b::store::CaseRecord> cases;
  auto add = [&](const std::string& task, int64_t ctx, const std::string& att, double acc) {
    v4b::store::CaseRecord c;
    c.key = task + std::to_string(ctx) + att;
    c.params = {{"task", task}, {"ctx", ctx}, {"depth", "random"}, {"attention", att}};
    c.metrics = {{"accuracy", acc, "%"}, {"n_samples", 4, ""}};
    cases.push_back(c);
  };
  add("vt", 4096, "native", 100), add("cwe", 4096, "native", 80);    // mean 90 > 85.6
  add("vt", 8192, "native", 90), add("cwe", 8192, "native", 70);     // mean 80
  add("vt", 4096, "dense", 50), add("cwe", 4096, "dense", 50);
  add("niah", 8192, "native", 100);                                   // the grid is not a RULER task
  const auto t = v4b::views::view_of("recall").table(cases);
  auto row = [&](const std::string& task, const std::string& ctx, const std::string& att) -> std::vector<std::string> {
    for (const auto& r : t.rows)
      if (r[0] == task && r[1] == ctx && r[3] == att) return r;
    return {};
  };
  ASSERT_FALSE(row("RULER avg", "4k", "native").empty());
  EXPECT_EQ(row("RULER avg", "4k", "native")[4], "90.0");
  EXPECT_EQ(row("RULER avg", "8k", "native")[4], "80.0");
  EXPECT_EQ(row("RULER avg", "8k", "native")[9], "2");
  EXPECT_FALSE(row("effective length", "4k", "native").empty());
  EXPECT_FALSE(row("effective length", "none", "dense").empty());
}

TEST(RecallScoring, BaseUrlSplitsIntoOriginAndPath) {
  EXPECT_EQ(v4b::evals::parse_base_url("http://127.0.0.1:8000/v1/"), (v4b::evals::BaseUrl{"http://127.0.0.1:8000", "/v1"}));
  EXPECT_EQ(v4b::evals::parse_base_url("https://api.example.com"), (v4b::evals::BaseUrl{"https://api.example.com", ""}));
  EXPECT_THROW(v4b::evals::parse_base_url("localhost:8000/v1"), v4b::UsageError);
  EXPECT_THROW(v4b::evals::parse_base_url("ftp://x/v1"), v4b::UsageError);
}

// The typed parameters: a round trip through the stored JSON, a cell's shape, defaults for keys an
// older run lacks, and validation naming the flag.
TEST(RecallParams, RoundTripCellsDefaultsAndValidation) {
  rc::RecallParams p;
  p.model = "v4-tiny";
  p.attention = {"native", "dense"};
  p.ctx = {512, 1024};
  p.depths = {0, 50};
  p.needle = "The value is {value}.";
  p.numerics = "official";
  EXPECT_EQ(rc::RecallParams::from_json(p.to_json()).to_json(), p.to_json());
  EXPECT_EQ(p.to_json()["models"], json::array({"v4-tiny"}));
  EXPECT_FALSE(p.to_json().contains("base_url")) << "only an http run stores its URL";

  const rc::RecallCell cell{p, "vt", 512, std::nullopt, 9};
  const json stored = cell.to_json();
  EXPECT_EQ(stored["depth"], "random");
  EXPECT_EQ(stored["ctx"], 512);
  const rc::RecallCell back = rc::RecallCell::from_json(stored);
  EXPECT_FALSE(back.depth.has_value());
  EXPECT_EQ(back.task, "vt");
  EXPECT_EQ(back.seed, 9u);
  EXPECT_EQ(back.run.attention, p.attention);

  const rc::RecallParams old = rc::RecallParams::from_json({{"tasks", {"niah"}}, {"models", {"m"}}, {"attention", {"native"}},
                                                            {"ctx", {512}}, {"depths", {50}}});
  EXPECT_EQ(old.samples, 1);
  EXPECT_EQ(old.backend, "engine");
  EXPECT_EQ(old.template_name, "default");
  EXPECT_NO_THROW(old.validate());
  auto invalid = [&](const std::function<void(rc::RecallParams&)>& edit, const std::string& needle) {
    rc::RecallParams q = old;
    edit(q);
    v4b::test::expect_throws_usage([&] { q.validate(); }, needle);
  };
  invalid([](rc::RecallParams& q) { q.depths = {120}; }, "outside 0-100");
  invalid([](rc::RecallParams& q) { q.attention = {"native", "native"}; }, "twice");
  invalid([](rc::RecallParams& q) { q.tasks = {"niah_single_9"}; }, "niah_single_9");
  invalid([](rc::RecallParams& q) { q.backend = "http", q.attention = {"native", "dense"}; }, "--attention native");
  invalid([](rc::RecallParams& q) { q.needle = "no placeholder"; }, "{value}");
  EXPECT_THROW(rc::RecallParams::from_json({{"samples", "four"}}), v4b::UsageError);
}
