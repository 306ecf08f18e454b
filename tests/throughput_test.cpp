// Suite `throughput` end to end against the in-process server at several concurrencies (stored
// metrics positive and consistent with the server's own counts), resume after a kill, the engine
// backend's per-token timestamps, the vLLM metric definitions on hand-made records, bad input.
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <numeric>
#include <set>

#include <gtest/gtest.h>

#include "common/errors.h"
#include "evals/suites/throughput/serving_metrics.h"
#include "evals/suites/throughput/throughput_params.h"
#include "reports/store/store.h"
#include "tests/serve_util.h"

using nlohmann::json;
using v4b::test::expect_usage_error;
using v4b::test::get_json;
using v4b::test::run_cli;
using v4b::test::TempDir;
using v4b::test::TestServer;

namespace {

class ThroughputSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server = new TestServer(); }
  static void TearDownTestSuite() {
    delete server;
    server = nullptr;
  }
  static TestServer* server;

  TempDir dir;
  std::string db() const { return (dir.path / "r.db").string(); }
  v4b::test::CliResult v4(const std::string& args, const std::string& env = "") {
    return run_cli(args + " --db " + db(), "V4BENCH_CACHE_DIR=" + (dir.path / "cache").string() + " " + env);
  }
  double m(const json& row, const char* k) {
    EXPECT_TRUE(row.contains(k)) << k << " missing in " << row.dump();
    return row.value(k, -1.0);
  }
};
TestServer* ThroughputSuite::server = nullptr;

}  // namespace

TEST_F(ThroughputSuite, EndToEndAgainstTheServerAtSeveralConcurrencies) {
  const int64_t served_before = get_json(*server, "/health").json["completed"];
  auto r = v4("run throughput --base-url " + server->url() +
              "/v1 --model v4-tiny --concurrency 1,2,4 --num-prompts 6 --warmup 1 --input-len 16-32 --output-len 8 --ignore-eos"
              " --slo ttft:60000,tpot:60000 --price-per-hour 2.5 --format json");
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  const json obj = json::parse(r.out);
  ASSERT_EQ(obj["rows"].size(), 3u);
  for (const auto& row : obj["rows"]) {
    EXPECT_EQ(m(row, "completed"), 6) << row.dump();
    EXPECT_EQ(m(row, "failed"), 0);
    EXPECT_EQ(m(row, "total_output_tokens"), 6 * 8) << "ignore_eos: exactly --output-len each";
    for (const char* k : {"duration", "request_throughput", "output_throughput", "mean_ttft_ms", "p99_ttft_ms", "mean_tpot_ms",
                          "mean_itl_ms", "median_e2el_ms", "usd_per_1m_output_tokens"})
      EXPECT_GT(m(row, k), 0) << k;
    EXPECT_GT(m(row, "total_token_throughput"), m(row, "output_throughput"));
    EXPECT_GE(m(row, "median_e2el_ms"), m(row, "median_ttft_ms"));
    EXPECT_GE(m(row, "p99_ttft_ms"), m(row, "median_ttft_ms"));
    EXPECT_NEAR(m(row, "request_throughput"), 6 / m(row, "duration"), 1e-9);
    EXPECT_NEAR(m(row, "output_throughput"), 48 / m(row, "duration"), 1e-9);
    EXPECT_NEAR(m(row, "request_goodput"), m(row, "request_throughput"), 1e-9) << "a generous SLO is met by all";
    EXPECT_NEAR(m(row, "usd_per_1m_output_tokens"), 2.5 / 3600 / m(row, "output_throughput") * 1e6, 1e-9);
    EXPECT_NEAR(m(row, "cost_ratio_deepseek_v4_flash"), m(row, "usd_per_1m_output_tokens") / 0.28, 1e-9);
  }
  // 3 cases x (6 timed + 1 warm-up) requests reached the server.
  EXPECT_EQ(get_json(*server, "/health").json["completed"].get<int64_t>(), served_before + 21);

  v4b::store::Store store(db());
  const auto cases = store.cases(obj["run_id"]);
  ASSERT_EQ(cases.size(), 3u);
  for (const auto& c : cases) {
    ASSERT_EQ(c.samples.size(), 6u) << c.key;
    for (const auto& s : c.samples) {
      const json& d = s.details;
      EXPECT_TRUE(d["ok"].get<bool>()) << d.dump();
      EXPECT_GE(d["e2el_ms"].get<double>(), d["ttft_ms"].get<double>()) << d.dump();
      EXPECT_EQ(d["output_tokens_from"], "usage");
      EXPECT_EQ(d["output_tokens"], 8) << "the server's usage";
      EXPECT_EQ(d["chunks"], 8) << "one streamed message per token";
      EXPECT_EQ(d["itl_ms"].size(), 7u);
      // The server counts BOS, which the client's own count of the prompt text leaves out.
      EXPECT_EQ(d["input_tokens"].get<int64_t>(), d["client_input_tokens"].get<int64_t>() + 1) << d.dump();
      EXPECT_GE(d["client_input_tokens"].get<int64_t>(), 10);
    }
  }
}

TEST_F(ThroughputSuite, ResumesAfterAKillWithoutRepeatingACase) {
  const std::string args = "run throughput --base-url " + server->url() +
                           " --model v4-tiny --concurrency 1,2,3 --num-prompts 3 --warmup 0 --input-len 8 --output-len 4 --format json";
  auto killed = v4(args, "V4BENCH_TEST_KILL_AFTER_CASES=1");
  ASSERT_TRUE(killed.signaled) << killed.err;
  auto resumed = v4("run throughput --resume 1 --format json");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  const json obj = json::parse(resumed.out);
  EXPECT_EQ(obj["status"], "done");
  EXPECT_EQ(obj["resumed"], 1);
  EXPECT_EQ(obj["executed"], 2);
  std::set<std::string> keys;
  for (const auto& row : obj["rows"]) {
    keys.insert(std::to_string(row["concurrency"].get<int>()));
    EXPECT_EQ(row["completed"], 3);
  }
  EXPECT_EQ(keys, (std::set<std::string>{"1", "2", "3"}));
}

TEST_F(ThroughputSuite, EngineBackendRecordsEveryTokensTime) {
  auto r = v4("run throughput --backend engine --model v4-tiny --concurrency 1,3 --num-prompts 4 --warmup 1 --input-len 12 --output-len 6 "
              "--ignore-eos --threads 1 --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json obj = json::parse(r.out);
  ASSERT_EQ(obj["rows"].size(), 2u);
  v4b::store::Store store(db());
  for (const auto& c : store.cases(obj["run_id"])) {
    ASSERT_EQ(c.samples.size(), 4u);
    for (const auto& s : c.samples) {
      const json& d = s.details;
      EXPECT_EQ(d["output_tokens"], 6);
      EXPECT_EQ(d["input_tokens"], 12);
      const auto itl = d["itl_ms"].get<std::vector<double>>();
      ASSERT_EQ(itl.size(), 5u) << "one gap per token after the first";
      // Per-token stamps: TPOT is exactly the mean gap, and E2EL = TTFT + the gaps.
      const double sum = std::accumulate(itl.begin(), itl.end(), 0.0);
      EXPECT_NEAR(d["tpot_ms"].get<double>(), sum / 5, 1e-3);
      EXPECT_NEAR(d["e2el_ms"].get<double>(), d["ttft_ms"].get<double>() + sum, 5e-3);
    }
  }
}

TEST(ThroughputMetrics, FollowVllmDefinitions) {
  using v4b::evals::RequestRecord;
  std::vector<RequestRecord> recs;
  for (int i = 0; i < 4; ++i) {
    RequestRecord r;
    r.ok = true;
    r.ttft_s = 0.1 * (i + 1);     // 100, 200, 300, 400 ms
    r.output_tokens = 1 + 10 * i;  // 1, 11, 21, 31
    r.e2el_s = r.ttft_s + 0.01 * (r.output_tokens - 1);
    r.input_tokens = 100;
    for (int k = 1; k < r.output_tokens; ++k) r.itl_s.push_back(0.01);
    recs.push_back(r);
  }
  RequestRecord failed;
  failed.error = "boom";
  failed.ttft_s = 99;
  recs.push_back(failed);
  const auto slo = v4b::evals::parse_slo("ttft:250,tpot:20");
  const auto metrics = v4b::evals::serving_metrics(recs, 2.0, slo);
  auto get = [&](const std::string& name) {
    for (const auto& x : metrics)
      if (x.name == name) return x.value;
    ADD_FAILURE() << name;
    return -1.0;
  };
  EXPECT_EQ(get("completed"), 4);
  EXPECT_EQ(get("failed"), 1);
  EXPECT_DOUBLE_EQ(get("request_throughput"), 2.0);
  EXPECT_DOUBLE_EQ(get("output_throughput"), 64 / 2.0);
  EXPECT_DOUBLE_EQ(get("total_token_throughput"), (400 + 64) / 2.0);
  EXPECT_NEAR(get("mean_ttft_ms"), 250, 1e-9) << "the failed request is left out";
  EXPECT_NEAR(get("median_ttft_ms"), 250, 1e-9);
  EXPECT_NEAR(get("p90_ttft_ms"), 370, 1e-9) << "numpy linear: 300 + 0.7 * 100";
  EXPECT_NEAR(get("p99_ttft_ms"), 397, 1e-9);
  EXPECT_NEAR(get("std_ttft_ms"), std::sqrt(12500.0), 1e-9) << "population std";
  EXPECT_NEAR(get("mean_tpot_ms"), 10, 1e-9) << "excluding the first token; single-token requests left out";
  EXPECT_NEAR(get("median_itl_ms"), 10, 1e-9);
  // Goodput: ttft <= 250 holds for the first two; the 1-token request counts TPOT as 0.
  EXPECT_DOUBLE_EQ(get("request_goodput"), 2 / 2.0);
  EXPECT_DOUBLE_EQ(get("slo_attainment"), 0.5);
  EXPECT_THROW(v4b::evals::parse_slo("ttft=5"), v4b::UsageError);
  EXPECT_THROW(v4b::evals::parse_slo("latency:5"), v4b::UsageError);
}

TEST_F(ThroughputSuite, BadInputIsAUsageErrorAndStoresNothing) {
  expect_usage_error(v4("run throughput --model m"), "--base-url");
  expect_usage_error(v4("run throughput --model m --base-url ftp://x"), "--base-url");
  expect_usage_error(v4("run throughput --model m --base-url http://127.0.0.1:1 --slo ttft:fast"), "SLO");
  expect_usage_error(v4("run throughput --model m --base-url http://127.0.0.1:1 --rate -1"), "--rate");
  expect_usage_error(v4("run throughput --model m --base-url http://127.0.0.1:1 --concurrency 0"), "--concurrency");
  expect_usage_error(v4("run throughput --model m --base-url http://127.0.0.1:1 --input-len 9-3"), "--input-len");
  expect_usage_error(v4("run throughput --model m --base-url http://127.0.0.1:1 --prices /nonexistent.json"), "--prices");
  expect_usage_error(v4("run throughput --backend engine --model v4-pro"), "--backend engine");
  EXPECT_FALSE(std::filesystem::exists(db()));
}

TEST_F(ThroughputSuite, UserPricesAppearBesideThePublishedOnes) {
  const auto prices = dir.path / "prices.json";
  std::ofstream(prices) << R"({"my-gpu-box": {"output_per_m": 1.25, "source": "our invoice"}})";
  auto r = v4("run throughput --backend engine --model v4-tiny --concurrency 2 --num-prompts 2 --warmup 0 --input-len 4 --output-len 3"
              " --ignore-eos --price-per-hour 1 --prices " + prices.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("my-gpu-box: $1.25/1M output tokens (our invoice)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("deepseek-v4-pro: $3.48/1M output tokens"), std::string::npos) << r.out;
  auto j = v4("runs show last --format json");
  ASSERT_EQ(j.status, 0) << j.err;
  const json run = json::parse(j.out);
  const json& metrics = run["cases"][0]["metrics"];
  EXPECT_NEAR(metrics["cost_ratio_my_gpu_box"].get<double>(), metrics["usd_per_1m_output_tokens"].get<double>() / 1.25, 1e-9);
}

TEST_F(ThroughputSuite, ChatEndpointAndPoissonRates) {
  auto chat = v4("run throughput --base-url " + server->url() +
                 " --endpoint /v1/chat/completions --model v4-tiny --concurrency 2 --num-prompts 2 --warmup 0 --input-len 6"
                 " --output-len 3 --ignore-eos --format json");
  ASSERT_EQ(chat.status, 0) << chat.err;
  const json c = json::parse(chat.out)["rows"][0];
  EXPECT_EQ(c["completed"], 2);
  EXPECT_EQ(c["total_output_tokens"], 6);
  EXPECT_GT(c["total_input_tokens"].get<double>(), 12) << "the chat template adds its tokens";

  auto rate = v4("run throughput --backend engine --model v4-tiny --rate 200,inf --max-concurrency 3 --num-prompts 4 --warmup 0"
                 " --input-len 4-8 --output-len 2-4 --threads 1 --format json");
  ASSERT_EQ(rate.status, 0) << rate.err;
  const json rows = json::parse(rate.out)["rows"];
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["rate"], 200);
  EXPECT_EQ(rows[1]["rate"], "inf");
  for (const auto& row : rows) {
    EXPECT_EQ(row["completed"], 4);
    EXPECT_GE(row["total_output_tokens"].get<double>(), 8);
    EXPECT_LE(row["total_output_tokens"].get<double>(), 16);
    EXPECT_LE(row["concurrency_avg"].get<double>(), 3 + 1e-9) << "--max-concurrency caps what is in flight";
  }
}

TEST(ThroughputApiKey, KeyFromTheEnvironmentIsSentAndNeverStored) {
  TestServer keyed({2, 8, 256, {}}, 1024, "s3cret");
  const auto no_key = v4b::test::post_json(keyed, "/v1/completions", R"({"model":"v4-tiny","prompt":"x","max_tokens":1})");
  EXPECT_EQ(no_key.status, 401);
  EXPECT_EQ(no_key.json["error"]["code"], "invalid_api_key") << no_key.body;
  EXPECT_EQ(get_json(keyed, "/health").status, 200) << "health needs no key";

  TempDir d;
  const std::string db = (d.path / "k.db").string();
  auto r = run_cli("run throughput --base-url " + keyed.url() + " --model v4-tiny --concurrency 1 --num-prompts 2 --warmup 0 --input-len 4"
                   " --output-len 2 --format json --db " + db, "V4BENCH_API_KEY=s3cret");
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  EXPECT_EQ(json::parse(r.out)["rows"][0]["completed"], 2);
  auto wrong = run_cli("run throughput --base-url " + keyed.url() + " --model v4-tiny --concurrency 1 --num-prompts 1 --warmup 0 --input-len 4"
                       " --output-len 2 --api-key nope --format json --db " + db);
  EXPECT_EQ(wrong.status, 1) << "every request refused: a failed case";
  std::ifstream in(db, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(bytes.find("s3cret"), std::string::npos) << "the key is not in the database";
}

// The typed parameters: a round trip through the stored JSON, the stored shape of a case, defaults
// for keys an older run lacks, and validation naming the flag.
TEST(ThroughputParams, RoundTripCasesDefaultsAndValidation) {
  using v4b::evals::ThroughputCase;
  using v4b::evals::ThroughputParams;
  ThroughputParams p;
  p.model = "m";
  p.base_url = "http://127.0.0.1:8000";
  p.rate = {2.5, INFINITY};
  p.max_concurrency = 3;
  p.input_len = {64, 256};
  const ThroughputParams back = ThroughputParams::from_json(p.to_json());
  EXPECT_EQ(back.to_json(), p.to_json());
  EXPECT_EQ(p.to_json()["rate"], json::array({2.5, "inf"}));
  EXPECT_EQ(p.to_json()["input_len"], json::array({64, 256}));

  const auto cases = v4b::evals::throughput_cases(p, 7);
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_EQ(cases[0].key(), "rate=2.5");
  EXPECT_EQ(cases[1].key(), "rate=inf");
  const json stored = cases[1].to_json();
  EXPECT_EQ(stored["rate"], "inf");
  EXPECT_EQ(stored["seed"], 7);
  EXPECT_FALSE(stored.contains("concurrency"));
  const ThroughputCase again = ThroughputCase::from_json(stored);
  EXPECT_FALSE(again.closed);
  EXPECT_TRUE(std::isinf(again.rate));
  EXPECT_EQ(again.concurrency, 3) << "an open-loop case is capped by max_concurrency";

  const ThroughputParams old = ThroughputParams::from_json({{"backend", "http"}, {"model", "m"}, {"concurrency", {1, 4}}});
  EXPECT_EQ(old.num_prompts, 16);
  EXPECT_EQ(old.endpoint, "/v1/completions");
  EXPECT_NO_THROW(old.validate());

  auto invalid = [&](const std::function<void(ThroughputParams&)>& edit, const std::string& needle) {
    ThroughputParams q = old;
    edit(q);
    v4b::test::expect_throws_usage([&] { q.validate(); }, needle);
  };
  invalid([](ThroughputParams& q) { q.endpoint = "/v1/embeddings"; }, "--endpoint");
  invalid([](ThroughputParams& q) { q.rate = {1}; }, "--concurrency or --rate");
  invalid([](ThroughputParams& q) { q.output_len = {9, 3}; }, "--output-len");
  invalid([](ThroughputParams& q) { q.price_per_hour = -1; }, "--price-per-hour");
  invalid([](ThroughputParams& q) { q.slo = "ttft:fast"; }, "SLO");
  EXPECT_THROW(ThroughputParams::from_json({{"num_prompts", "many"}}), v4b::UsageError);
}
