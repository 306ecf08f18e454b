// End-to-end tests of the v4bench binary: output contracts, exit codes, resume after a kill.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
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

class Cli : public ::testing::Test {
 protected:
  TempDir dir;
  std::string db() const { return (dir.path / "v4bench.db").string(); }
  CliResult v4(const std::string& args, const std::string& env = "") { return run_cli(args + " --db " + db(), env); }
  int64_t run_count() {
    if (!std::filesystem::exists(db())) return 0;
    CliResult r = run_cli("runs list --format json --db " + db());
    EXPECT_EQ(r.status, 0) << r.err;
    return static_cast<int64_t>(json::parse(r.out).size());
  }
};


}  // namespace

TEST_F(Cli, AnalyzeJsonReproducesHeadline) {
  CliResult r = v4("analyze --model v4-pro,v4-flash --vs v3.2 --ctx 4k,128k,1m --kv-format fp8 --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  json rows = json::parse(r.out);
  ASSERT_TRUE(rows.is_array());
  ASSERT_EQ(rows.size(), 6u);
  for (const auto& row : rows)
    for (const char* key : {"model", "baseline", "ctx", "kv_bytes", "kv_ratio", "flops_raw", "flops_fp8eq", "flops_raw_ratio",
                            "flops_fp8eq_ratio", "params_total", "params_active"})
      EXPECT_TRUE(row.contains(key)) << key;
  auto find = [&](const std::string& model, int64_t ctx) {
    for (const auto& row : rows)
      if (row["model"] == model && row["ctx"] == ctx) return row;
    ADD_FAILURE() << model << " " << ctx;
    return json();
  };
  const json pro = find("v4-pro", 1048576), flash = find("v4-flash", 1048576);
  EXPECT_NEAR(pro["kv_ratio"].get<double>(), 0.105, 0.001);
  EXPECT_NEAR(flash["kv_ratio"].get<double>(), 0.073, 0.001);
  EXPECT_NEAR(pro["flops_fp8eq_ratio"].get<double>(), 0.266, 0.001);
  EXPECT_NEAR(flash["flops_fp8eq_ratio"].get<double>(), 0.100, 0.001);
  EXPECT_EQ(pro["baseline"], "v3.2");
  EXPECT_EQ(run_count(), 1);
}

TEST_F(Cli, AnalyzeTableShowsHeadlineRows) {
  CliResult r = v4("analyze --ctx 1m");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("v4-pro"), std::string::npos);
  EXPECT_NE(r.out.find("10.5%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("26.6%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("7.3%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("10.0%"), std::string::npos) << r.out;
  // V3.2 stops at 160K: the table marks the baseline as projected beyond its limit.
  EXPECT_NE(r.out.find("v3.2*"), std::string::npos) << r.out;
}

TEST_F(Cli, RunPrintsFinalObjectAndRunsShowContract) {
  CliResult r = v4("run analyze --model v4-flash --ctx 4k,8k --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  json obj = json::parse(r.out);
  EXPECT_EQ(obj["suite"], "analyze");
  EXPECT_EQ(obj["status"], "done");
  const int64_t id = obj["run_id"];

  CliResult show = v4("runs show " + std::to_string(id) + " --format json");
  ASSERT_EQ(show.status, 0) << show.err;
  json s = json::parse(show.out);
  for (const char* key : {"id", "suite", "model", "params", "host", "status", "cases"}) EXPECT_TRUE(s.contains(key)) << key;
  EXPECT_EQ(s["id"], id);
  EXPECT_EQ(s["model"], "v4-flash");
  EXPECT_TRUE(s["host"].contains("cpu"));
  ASSERT_EQ(s["cases"].size(), 2u);
  EXPECT_EQ(s["cases"][0]["params"]["ctx"], 4096);
  EXPECT_GT(s["cases"][0]["metrics"]["kv_bytes"].get<double>(), 0);
  EXPECT_LT(s["cases"][0]["metrics"]["kv_bytes"].get<double>(), s["cases"][1]["metrics"]["kv_bytes"].get<double>());

  CliResult csv = v4("runs export " + std::to_string(id) + " --format csv");
  ASSERT_EQ(csv.status, 0) << csv.err;
  EXPECT_EQ(csv.out.rfind("run_id,suite,model,case,status,metric,value,unit\n", 0), 0u) << csv.out.substr(0, 200);
  EXPECT_NE(csv.out.find(",kv_bytes,"), std::string::npos);

  // Without --format, export writes JSON (the full records), not the list's table.
  CliResult exported = v4("runs export " + std::to_string(id));
  ASSERT_EQ(exported.status, 0) << exported.err;
  EXPECT_EQ(json::parse(exported.out)[0]["id"], id);

  CliResult md = v4("runs show last --format md");
  ASSERT_EQ(md.status, 0) << md.err;
  EXPECT_NE(md.out.find("| model |"), std::string::npos) << md.out;
}

TEST_F(Cli, BadInputIsOneLineExit2AndStoresNothing) {
  expect_usage_error(v4("analyze --bogus-flag"), "--bogus-flag");
  expect_usage_error(v4("analyze --model v9-ultra"), "v9-ultra");
  expect_usage_error(v4("analyze --model " + (dir.path / "no-such-dir").string()), "does not exist");
  expect_usage_error(v4("analyze --ctx abc"), "abc");
  expect_usage_error(v4("analyze --ctx -4"), "-4");
  expect_usage_error(v4("analyze --ctx 0"), "'0'");
  expect_usage_error(v4("analyze --ctx 4k,,8k"), "4k,,8k");
  expect_usage_error(v4("analyze --kv-format fp4"), "fp4");
  expect_usage_error(v4("analyze --vs nope"), "nope");
  expect_usage_error(v4("run nosuch"), "nosuch");
  expect_usage_error(v4("analyze --format yaml"), "yaml");

  // A malformed and an inconsistent checkpoint config.
  std::filesystem::create_directories(dir.path / "bad");
  std::ofstream(dir.path / "bad" / "config.json") << "{ not json";
  expect_usage_error(v4("analyze --model " + (dir.path / "bad").string()), "not valid JSON");
  std::filesystem::create_directories(dir.path / "odd");
  std::ofstream(dir.path / "odd" / "config.json")
      << R"({"model_type":"llama","hidden_size":4096,"num_hidden_layers":2,"num_attention_heads":32,)"
      << R"("num_key_value_heads":5,"intermediate_size":100,"vocab_size":10,"max_position_embeddings":64})";
  expect_usage_error(v4("analyze --model " + (dir.path / "odd").string()), "num_key_value_heads");
  EXPECT_FALSE(std::filesystem::exists(db())) << "bad input must not create the database";

  // With a database present, bad input adds no run.
  ASSERT_EQ(v4("analyze --ctx 4k").status, 0);
  expect_usage_error(v4("analyze --ctx 4k,xyz"), "xyz");
  expect_usage_error(v4("run analyze --resume 99"), "99");
  EXPECT_EQ(run_count(), 1);
}

TEST_F(Cli, ResumeAfterKillRepeatsNothing) {
  const std::string args = "run analyze --model v4-pro,v4-flash,v3 --ctx 4k,32k,1m --format json";
  CliResult killed = v4(args, "V4BENCH_TEST_KILL_AFTER_CASES=4");
  ASSERT_TRUE(killed.signaled) << "the fault hook should SIGKILL the run; status " << killed.status << " " << killed.err;

  CliResult show = v4("runs show last --format json");
  ASSERT_EQ(show.status, 0) << show.err;
  json partial = json::parse(show.out);
  EXPECT_EQ(partial["status"], "running");
  ASSERT_EQ(partial["cases"].size(), 4u);
  const int64_t id = partial["id"];

  CliResult resumed = v4("run analyze --resume " + std::to_string(id) + " --format json");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  json obj = json::parse(resumed.out);
  EXPECT_EQ(obj["run_id"], id);
  EXPECT_EQ(obj["status"], "done");
  EXPECT_EQ(obj["resumed"], 4);
  EXPECT_EQ(obj["executed"], 5);

  json full = json::parse(v4("runs show " + std::to_string(id) + " --format json").out);
  ASSERT_EQ(full["cases"].size(), 9u);
  std::set<std::string> keys;
  for (const auto& c : full["cases"]) keys.insert(c["key"].get<std::string>());
  EXPECT_EQ(keys.size(), 9u) << "no case may be stored twice";
  EXPECT_EQ(run_count(), 1);

  // Resuming a finished run is a no-op that repeats nothing; "last" names the newest run of the suite.
  json again = json::parse(v4("run analyze --resume last --format json").out);
  EXPECT_EQ(again["run_id"], id);
  EXPECT_EQ(again["executed"], 0);
  EXPECT_EQ(again["resumed"], 9);
  expect_usage_error(v4("run kv --resume last"), "no kv run");
}

TEST_F(Cli, ADeadEndpointSaysSoOnTheConsole) {
  // Port 1 on loopback: nothing listens there.
  const CliResult r = v4("run recall --backend http --base-url http://127.0.0.1:1/v1 --model m --ctx 1k");  // ~7 s of retries
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.err.rfind("v4bench: error: cannot reach http://127.0.0.1:1", 0), 0u) << r.err;
}

TEST_F(Cli, RefusesNewerAndCorruptDatabases) {
  ASSERT_EQ(v4("analyze --ctx 4k").status, 0);
  ASSERT_EQ(std::system(("sqlite3 " + db() + " 'PRAGMA user_version = 42;'").c_str()), 0);
  CliResult newer = v4("runs list");
  expect_usage_error(newer, "42");

  std::ofstream(dir.path / "junk.db") << std::string(4096, 'x');
  CliResult junk = run_cli("runs list --db " + (dir.path / "junk.db").string());
  expect_usage_error(junk, "junk.db");
  CliResult junk_run = run_cli("analyze --ctx 4k --db " + (dir.path / "junk.db").string());
  expect_usage_error(junk_run, "junk.db");
}

TEST_F(Cli, ReadingCommandsDoNotCreateADatabase) {
  expect_usage_error(v4("runs list"), "no results database");
  EXPECT_FALSE(std::filesystem::exists(db()));
}

TEST_F(Cli, HelpTeachesAndVersionPrints) {
  CliResult help = run_cli("analyze --help");
  EXPECT_EQ(help.status, 0);
  for (const char* s : {"--model", "--vs", "--ctx", "--kv-format", "--db", "--format", "kv_ratio", "flops_fp8eq_ratio", "4k"})
    EXPECT_NE(help.out.find(s), std::string::npos) << s;
  CliResult run_help = run_cli("run analyze --help");
  EXPECT_EQ(run_help.status, 0);
  EXPECT_NE(run_help.out.find("--resume"), std::string::npos);
  EXPECT_NE(run_help.out.find("--seed"), std::string::npos);
  CliResult top = run_cli("--help");
  for (const char* s : {"analyze", "run", "runs", "env", "version"}) EXPECT_NE(top.out.find(s), std::string::npos) << s;
  CliResult version = run_cli("version");
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.out.rfind("v4bench ", 0), 0u);
  CliResult none = run_cli("");
  EXPECT_EQ(none.status, 2);
}

TEST_F(Cli, EnvReportsHostContext) {
  CliResult r = run_cli("env --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  json host = json::parse(r.out);
  EXPECT_GT(host["logical_cores"].get<int>(), 0);
  EXPECT_GT(host["memory_bytes"].get<int64_t>(), 0);
  EXPECT_FALSE(host["cpu"].get<std::string>().empty());
  EXPECT_FALSE(host["engine_commit"].get<std::string>().empty());
}

TEST_F(Cli, RunsFilterByDateAndDeleteCascades) {
  ASSERT_EQ(v4("run analyze --model v4-flash --ctx 4k").status, 0);
  ASSERT_EQ(v4("run analyze --model v4-pro --ctx 4k").status, 0);
  ASSERT_EQ(v4("run kv --model v4-pro --ctx 4k").status, 0);
  ASSERT_EQ(run_count(), 3);
  auto listed = [&](const std::string& flags) {
    CliResult r = v4("runs list --format json " + flags);
    EXPECT_EQ(r.status, 0) << r.err;
    return json::parse(r.out).size();
  };
  EXPECT_EQ(listed("--since 2000-01-01"), 3u);
  EXPECT_EQ(listed("--until 2000-01-01"), 0u);
  EXPECT_EQ(listed("--since 2999-01-01"), 0u);
  EXPECT_EQ(listed("--until 2999-12-31 --suite analyze"), 2u);

  expect_usage_error(v4("runs delete"), "needs run ids or a filter");
  CliResult exported = v4("runs export --suite analyze --format json");
  ASSERT_EQ(exported.status, 0) << exported.err;
  EXPECT_EQ(json::parse(exported.out).size(), 2u);

  CliResult del = v4("runs delete --suite analyze --model v4-pro");
  ASSERT_EQ(del.status, 0) << del.err;
  EXPECT_NE(del.out.find("deleted 1 run"), std::string::npos) << del.out;
  EXPECT_EQ(run_count(), 2);
  CliResult last = v4("runs delete last");
  ASSERT_EQ(last.status, 0) << last.err;
  EXPECT_EQ(run_count(), 1);
  // The remaining run's cases and metrics are intact; the deleted ones left nothing behind.
  CliResult csv = v4("runs export --suite analyze --format csv");
  ASSERT_EQ(csv.status, 0) << csv.err;
  EXPECT_NE(csv.out.find("v4-flash"), std::string::npos);
  EXPECT_EQ(csv.out.find("v4-pro"), std::string::npos);
  expect_usage_error(v4("runs delete --suite kv"), "no run matches");
}

TEST_F(Cli, PlanRunsEveryStepAndABadPlanStoresNothing) {
  const std::string plan = (dir.path / "plan.json").string();
  std::ofstream(plan) << R"({"name": "t", "steps": [
      {"suite": "analyze", "args": "--model v4-flash --ctx 4k"},
      {"suite": "analyze", "args": ["--model", "v4-pro", "--ctx", "4k,8k"]}]})";
  CliResult r = v4("run --plan " + plan + " --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json out = json::parse(r.out);
  ASSERT_EQ(out["runs"].size(), 2u);
  EXPECT_EQ(out["runs"][1]["cases"], 2);
  EXPECT_EQ(run_count(), 2);

  std::ofstream(plan) << R"({"steps": [{"suite": "analyze", "args": "--model v4-flash"}, {"suite": "analyze", "args": "--ctx 0"}]})";
  expect_usage_error(v4("run --plan " + plan), "step 2 (analyze)");
  std::ofstream(plan) << R"({"steps": [{"suite": "nope"}]})";
  expect_usage_error(v4("run --plan " + plan), "unknown suite 'nope'");
  expect_usage_error(v4("run --plan " + (dir.path / "missing.json").string()), "cannot read plan");
  EXPECT_EQ(run_count(), 2);  // nothing more stored
}

TEST_F(Cli, ExplicitDbBeatsTheEnvironment) {
  const std::string other = (dir.path / "env.db").string();
  CliResult r = run_cli("run analyze --model v4-flash --ctx 4k --db " + db(), "V4BENCH_DB=" + other);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(run_count(), 1);
  EXPECT_FALSE(std::filesystem::exists(other));
  // Without --db the environment's database is used.
  ASSERT_EQ(run_cli("run analyze --model v4-flash --ctx 4k", "V4BENCH_DB=" + other).status, 0);
  EXPECT_TRUE(std::filesystem::exists(other));
}

TEST_F(Cli, DbBeforeTheSuiteNameIsHonoured) {
  // `run --db X SUITE` and `run SUITE --db X` name the same database.
  const std::string other = (dir.path / "env.db").string();
  CliResult r = run_cli("run --db " + db() + " analyze --model v4-flash --ctx 4k", "V4BENCH_DB=" + other);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(run_count(), 1);
  EXPECT_FALSE(std::filesystem::exists(other));
}
