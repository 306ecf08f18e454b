// `v4bench run coding` end to end: flags and usage errors, the summary case and resume, pass@k
// from a samples file, the engine backend on a tiny preset, the HTTP backend against an in-process
// OpenAI-compatible server, and verdicts that do not move with the machine's load.
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "evals/suites/coding/coding_params.h"
#include "evals/suites/coding/grader.h"
#include "evals/suites/coding/problems.h"
#include "reports/store/store.h"
#include "tests/coding_test_util.h"
#include "tests/test_util.h"

namespace v4b::test {
namespace {

using nlohmann::json;
namespace coding = evals::coding;

class CodingCli : public ::testing::Test {
 protected:
  TempDir dir;
  std::string db() const { return (dir.path / "runs.db").string(); }
  // Each test gets its own cache (reference outputs, synthetic weights) so none depends on another.
  CliResult v4(const std::string& args, const std::string& env = "") {
    return run_cli(args + " --db " + db(), "V4BENCH_CACHE_DIR=" + (dir.path / "cache").string() + " " + env);
  }
  std::vector<store::CaseRecord> cases_of_last_run() {
    store::Store s(db());
    return s.cases(s.list_runs({}).front().id);
  }
  static json metrics(const store::CaseRecord& c) {
    json m = json::object();
    for (const auto& x : c.metrics) m[x.name] = x.value;
    return m;
  }
  const store::CaseRecord& summary(const std::vector<store::CaseRecord>& cases) {
    for (const auto& c : cases)
      if (c.key == "summary") return c;
    throw std::runtime_error("no summary case");
  }
  std::string write(const std::string& name, const std::string& text) {
    const auto p = dir.path / name;
    std::ofstream(p) << text;
    return p.string();
  }
};

TEST_F(CodingCli, HelpTeachesFlagsMetricsStatusesAndTheSandbox) {
  const CliResult r = run_cli("run coding --help");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* needle : {"--dataset", "--backend", "--samples-file", "--n", "--k", "--base-url", "--time-mode", "pass_at_<k>",
                             "pass_at_<k>_plus", "timeout", "oom", "namespaces", "humaneval+", "lcb-sample", "Examples"})
    EXPECT_NE(r.out.find(needle), std::string::npos) << "help lacks " << needle;
}

TEST_F(CodingCli, UsageErrorsNameTheParameterAndStoreNothing) {
  expect_usage_error(v4("run coding --dataset humaneval++"), "humaneval++");
  expect_usage_error(v4("run coding --backend gpt"), "gpt");
  expect_usage_error(v4("run coding --k 1,5 --n 4"), "--k 5");
  expect_usage_error(v4("run coding --backend engine --model v4-tiny --n 4 --k 1"), "--temperature");
  expect_usage_error(v4("run coding --backend engine --model v4-pro"), "v4-pro");
  expect_usage_error(v4("run coding --backend engine"), "--model");
  expect_usage_error(v4("run coding --backend file"), "--samples-file");
  expect_usage_error(v4("run coding --backend http --model m"), "--base-url");
  expect_usage_error(v4("run coding --problems HumanEval/0,HumanEval/999"), "HumanEval/999");
  expect_usage_error(v4("run coding --time-mode gpu"), "--time-mode");
  expect_usage_error(v4("run coding --memory 1m"), "--memory");
  const std::string bad = write("bad.jsonl", R"({"task_id": "HumanEval/0", "completion": "    return 1\n"})" "\n" R"({"task_id": "Nope/1", "completion": ""})" "\n");
  expect_usage_error(v4("run coding --dataset humaneval --backend file --samples-file " + bad), "Nope/1");
  const std::string partial = write("partial.jsonl", R"({"task_id": "HumanEval/0", "completion": "    return 1\n"})" "\n");
  expect_usage_error(v4("run coding --dataset humaneval --backend file --samples-file " + partial), "HumanEval/1");
  EXPECT_FALSE(std::filesystem::exists(db())) << "bad input must not create the database";
}

TEST_F(CodingCli, OracleRunResumesAndStoresASummary) {
  const std::string args = "run coding --dataset humaneval --backend oracle --limit 6 --chunk 2 --time-floor 1";
  const CliResult killed = v4(args, "V4BENCH_TEST_KILL_AFTER_CASES=1");
  ASSERT_TRUE(killed.signaled) << killed.err;
  const CliResult resumed = v4("run coding --resume 1 --format json");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  const json obj = json::parse(resumed.out);
  EXPECT_EQ(obj["resumed"], 1);
  EXPECT_EQ(obj["executed"], 2);
  const auto cases = cases_of_last_run();
  ASSERT_EQ(cases.size(), 4u);  // three chunks of two problems, then the summary
  const json s = metrics(summary(cases));
  EXPECT_EQ(s["problems"], 6);
  EXPECT_EQ(s["samples"], 6);
  EXPECT_EQ(s["pass_at_1"], 1.0);
  EXPECT_EQ(s["status_pass"], 6);
  EXPECT_FALSE(s.contains("pass_at_1_plus")) << "humaneval has no plus tests";
  // Every sample records its task, status and per-test detail.
  for (const auto& c : cases)
    for (const auto& smp : c.samples)
      if (c.key != "summary") {
        EXPECT_EQ(smp.details.value("status", ""), "pass");
        EXPECT_TRUE(smp.details.contains("task_id"));
        EXPECT_GT(smp.details.value("tests_passed", 0), 0);
      }
  // The canonical solutions' timings were cached for the next run.
  EXPECT_TRUE(std::filesystem::exists(dir.path / "cache" / "coding"));
  // The host context says how programs were isolated.
  store::Store st(db());
  const auto run = st.run(1);
  ASSERT_TRUE(run);
  EXPECT_TRUE(run->host.contains("coding")) << run->host.dump();
  EXPECT_TRUE(run->host["coding"]["sandbox"].contains("network"));
}

TEST_F(CodingCli, PlainSandboxWithoutNamespacesStillGradesAndSaysSo) {
  // The fallback for hosts that refuse namespaces: same verdicts, and the run records the reduction.
  const std::string samples = write("s.jsonl", "{\"task_id\": \"HumanEval/0\", \"completion\": \"    return None\\n\"}\n");
  const CliResult r = v4("run coding --dataset humaneval --backend oracle --limit 3 --time-floor 1", "V4BENCH_SANDBOX=plain");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(metrics(summary(cases_of_last_run()))["pass_at_1"], 1.0);
  const CliResult wrong = v4("run coding --dataset humaneval --backend file --samples-file " + samples + " --problems HumanEval/0 --time-floor 1",
                             "V4BENCH_SANDBOX=plain");
  ASSERT_EQ(wrong.status, 0) << wrong.err;
  EXPECT_EQ(metrics(summary(cases_of_last_run()))["pass_at_1"], 0.0);
  store::Store st(db());
  const json sandbox = st.run(1)->host["coding"]["sandbox"];
  EXPECT_EQ(sandbox.value("namespaces", ""), "none") << sandbox.dump();
  EXPECT_NE(sandbox.value("note", "").find("V4BENCH_SANDBOX=plain"), std::string::npos) << sandbox.dump();
}

TEST_F(CodingCli, FileBackendGivesHandComputedPassAtK) {
  // HumanEval/0 (has_close_elements): two right samples of three (one a completion, one a solution);
  // HumanEval/1: three wrong ones. pass@1 = (2/3 + 0) / 2; pass@2 = (1 - C(1,2)/C(3,2) + 0) / 2 = 0.5.
  const auto problems = coding::load_problems("humaneval");
  const std::string right_completion = json(problems[0].canonical.substr(problems[0].prompt.size())).dump();
  const std::string right_solution = json(problems[0].canonical).dump();
  const std::string samples = write("samples.jsonl",
                                    "{\"task_id\": \"HumanEval/0\", \"completion\": " + right_completion + "}\n" +
                                        "{\"task_id\": \"HumanEval/0\", \"solution\": " + right_solution + "}\n" +
                                        "{\"task_id\": \"HumanEval/0\", \"completion\": \"    return None\\n\"}\n" +
                                        "{\"task_id\": \"HumanEval/1\", \"completion\": \"    return []\\n\"}\n" +
                                        "{\"task_id\": \"HumanEval/1\", \"completion\": \"    while True:\\n        pass\\n\"}\n" +
                                        "{\"task_id\": \"HumanEval/1\", \"completion\": \"    return [\"}\n");
  const std::string args = "run coding --dataset humaneval --backend file --samples-file " + samples + " --problems HumanEval/0,HumanEval/1 --time-floor 1";
  expect_usage_error(v4(args + " --k 4"), "--k 4");
  const CliResult r = v4(args + " --k 1,2");
  ASSERT_EQ(r.status, 0) << r.err;
  const json s = metrics(summary(cases_of_last_run()));
  EXPECT_NEAR(s["pass_at_1"].get<double>(), (2.0 / 3.0) / 2, 1e-12);
  EXPECT_NEAR(s["pass_at_2"].get<double>(), 0.5, 1e-12);
  EXPECT_EQ(s["status_pass"], 2);
  EXPECT_EQ(s["status_fail"], 2);
  EXPECT_EQ(s["status_timeout"], 1);
  EXPECT_EQ(s["status_error"], 1);
  EXPECT_NE(r.out.find("pass_at_2"), std::string::npos) << r.out;
}

TEST_F(CodingCli, EngineBackendRunsATinyPresetEndToEnd) {
  const CliResult r = v4("run coding --dataset humaneval --backend engine --model v4-tiny --problems HumanEval/0,HumanEval/2 "
                         "--max-new-tokens 6 --time-floor 1");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto cases = cases_of_last_run();
  int seen = 0;
  for (const auto& c : cases) {
    if (c.key == "summary") continue;
    for (const auto& smp : c.samples) {
      ++seen;
      const json& d = smp.details;
      EXPECT_TRUE(d.contains("status"));
      EXPECT_LE(d["generation"].value("new_tokens", 99), 6);
      EXPECT_TRUE(d["generation"].value("folded_vocab", false)) << "v4-tiny's vocabulary is smaller than the tokenizer's";
      EXPECT_TRUE(d.contains("program"));
    }
  }
  EXPECT_EQ(seen, 2);
  EXPECT_TRUE(metrics(summary(cases)).contains("pass_at_1"));
}

// A tiny OpenAI-compatible server: right answers for has_close_elements, wrong ones otherwise.
class FakeServer {
 public:
  FakeServer() {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      auth_ = req.get_header_value("Authorization");
      const json body = json::parse(req.body);
      const std::string ask = body["messages"][0]["content"];
      ++chat_calls_;
      const std::string code = ask.find("has_close_elements") != std::string::npos
                                   ? "def has_close_elements(numbers, threshold):\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
                                   : "def nothing():\n    pass\n";
      res.set_content(json{{"choices", {{{"message", {{"role", "assistant"}, {"content", "Here:\n```python\n" + code + "```\nDone."}}},
                                          {"finish_reason", "stop"}}}}}
                          .dump(),
                      "application/json");
    });
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      const json body = json::parse(req.body);
      ++completion_calls_;
      stops_ = body.value("stop", json::array()).size();
      const std::string prompt = body["prompt"];
      // A right body followed by junk the stop sequences must cut.
      const std::string text = prompt.find("has_close_elements") != std::string::npos
                                   ? "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n\ndef junk(:\n"
                                   : "    return 0\n";
      res.set_content(json{{"choices", {{{"text", text}, {"finish_reason", "length"}}}}}.dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::string auth_;
  std::atomic<int> chat_calls_{0}, completion_calls_{0};
  size_t stops_ = 0;

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(CodingCli, HttpBackendChatAndCompletions) {
  FakeServer server;
  const std::string base = "--dataset humaneval+ --backend http --model fake --problems HumanEval/0,HumanEval/1 --time-floor 1 --base-url http://127.0.0.1:" +
                           std::to_string(server.port()) + "/v1";
  const CliResult chat = v4("run coding " + base + " --api chat", "V4BENCH_API_KEY=sekrit-key");
  ASSERT_EQ(chat.status, 0) << chat.err;
  EXPECT_EQ(server.chat_calls_, 2);
  EXPECT_EQ(server.auth_, "Bearer sekrit-key");
  json s = metrics(summary(cases_of_last_run()));
  EXPECT_EQ(s["pass_at_1"], 0.5);
  EXPECT_EQ(s["pass_at_1_plus"], 0.5);

  const CliResult completions = v4("run coding " + base + " --api completions");
  ASSERT_EQ(completions.status, 0) << completions.err;
  EXPECT_EQ(server.completion_calls_, 2);
  EXPECT_GT(server.stops_, 0u) << "completions of code prompts send HumanEval's stop sequences";
  s = metrics(summary(cases_of_last_run()));
  EXPECT_EQ(s["pass_at_1"], 0.5) << "the junk after the function must be cut";

  // The key is never stored.
  std::ifstream in(db(), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes.find("sekrit-key"), std::string::npos);

  // A server that is down fails the chunk (and the run), with the reason stored.
  const CliResult down = v4("run coding --dataset humaneval --backend http --model fake --problems HumanEval/0 --base-url http://127.0.0.1:1/v1");
  EXPECT_EQ(down.status, 1) << down.err;
  EXPECT_NE(down.out.find("FAILED"), std::string::npos) << down.out;
}

// CPU-time limits make verdicts independent of load: the same statuses with one worker on an idle
// machine and with two workers while two more threads keep both cores busy.
TEST(CodingGraderLoad, SameVerdictsWithOneWorkerAndWithBothCoresBusy) {
  const auto problems = coding::load_problems("humaneval+");
  std::vector<coding::GradeJob> jobs;
  for (size_t i = 0; i < 8; ++i) {
    jobs.push_back({&problems[i * 20], problems[i * 20].canonical});
    jobs.push_back({&problems[i * 20], corrupted_solution(problems[i * 20])});
  }
  coding::Grader quiet(coding::GradeOptions{});
  const auto a = coding::grade_all(quiet, jobs, 1);
  std::atomic<bool> stop{false};
  std::vector<std::thread> burners;
  for (int i = 0; i < 2; ++i)
    burners.emplace_back([&] {
      volatile double x = 1;
      while (!stop) x = x * 1.0000001 + 1e-9;
    });
  coding::Grader busy(coding::GradeOptions{});  // its references are timed under load too
  const auto b = coding::grade_all(busy, jobs, 2);
  stop = true;
  for (auto& t : burners) t.join();
  int passes = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(a[i].status, b[i].status) << jobs[i].problem->task_id << " job " << i;
    EXPECT_EQ(a[i].plus_status, b[i].plus_status) << jobs[i].problem->task_id;
    passes += a[i].status == "pass";
  }
  EXPECT_EQ(passes, 8) << "every canonical solution passes, every corrupted one fails";
}

// The typed parameters: a round trip through the stored JSON, a case's shape, defaults for keys an
// older run lacks, and validation naming the flag.
TEST(CodingParams, RoundTripCasesDefaultsAndValidation) {
  coding::CodingParams p;
  p.backend = "http";
  p.model = "m";
  p.base_url = "https://api.example.com/v1";
  p.n = 4;
  p.k = {1, 4};
  p.temperature = 0.8;
  EXPECT_EQ(coding::CodingParams::from_json(p.to_json()).to_json(), p.to_json());
  EXPECT_EQ(p.to_json()["api"], "chat");
  const coding::CodingCase c{p, {"HumanEval/0", "HumanEval/1"}, 5};
  const coding::CodingCase back = coding::CodingCase::from_json(c.to_json());
  EXPECT_EQ(back.chunk_tasks, c.chunk_tasks);
  EXPECT_EQ(back.seed, 5u);
  EXPECT_EQ(back.run.to_json(), p.to_json());

  const coding::CodingParams old = coding::CodingParams::from_json({{"dataset", "humaneval"}, {"backend", "oracle"}});
  EXPECT_EQ(old.workers, 2);
  EXPECT_EQ(old.time_mode, "cpu");
  EXPECT_NO_THROW(old.validate());
  auto invalid = [&](auto edit, const std::string& needle) {
    coding::CodingParams q = old;
    edit(q);
    try {
      q.validate();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  invalid([](coding::CodingParams& q) { q.backend = "grpc"; }, "unknown --backend");
  invalid([](coding::CodingParams& q) { q.backend = "engine", q.n = 3; }, "--temperature > 0");
  invalid([](coding::CodingParams& q) { q.memory_bytes = 1 << 20; }, "--memory");
  invalid([](coding::CodingParams& q) { q.backend = "file"; }, "--samples-file");
  EXPECT_THROW(coding::CodingParams::from_json({{"n", "two"}}), UsageError);
}

}  // namespace
}  // namespace v4b::test
