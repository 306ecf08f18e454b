// `v4bench bench`: llama-bench-style tests at depth, repetitions and every output format.
#include <sqlite3.h>

#include <cmath>
#include <numeric>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

using nlohmann::json;
using v4b::test::expect_usage_error;
using v4b::test::run_cli;
using v4b::test::TempDir;

namespace {
std::string cache_env(const TempDir& d) { return "V4BENCH_CACHE_DIR=" + (d.path / "cache").string(); }

// The JSON results of `bench FLAGS --format json` (none when it fails, with its status and stderr reported).
json bench_json(const std::string& flags, const TempDir& d) {
  auto r = run_cli("bench " + flags + " --format json", cache_env(d));
  EXPECT_EQ(r.status, 0) << r.err;
  return r.status == 0 ? json::parse(r.out) : json::array();
}

// Each result's test name, in order.
std::vector<std::string> test_names(const json& rows) {
  std::vector<std::string> names;
  for (const auto& row : rows) names.push_back(row["test"]);
  return names;
}

// One result's repetitions: `reps` of them, each rate the tokens of all its sequences over its time.
std::vector<double> expect_rates_match_times(const json& row, size_t reps) {
  const auto ns = row["samples_ns"].get<std::vector<double>>(), ts = row["samples_ts"].get<std::vector<double>>();
  EXPECT_EQ(ns.size(), reps);
  EXPECT_EQ(ts.size(), reps);
  const int64_t tokens = (row["n_prompt"].get<int64_t>() + row["n_gen"].get<int64_t>()) * row["n_parallel"].get<int64_t>();
  for (size_t i = 0; i < std::min(ns.size(), ts.size()); ++i) EXPECT_NEAR(ts[i], tokens * 1e9 / ns[i], 1e-6 * ts[i]);
  return ts;
}
}  // namespace

TEST(BenchCli, JsonHasEveryTestWithRepetitionsAndStatistics) {
  TempDir d;
  const json rows = bench_json("-m v4-tiny -p 16 -n 4 -d 0,16 -r 3 --warmup 1 -t 1", d);
  ASSERT_EQ(rows.size(), 4u);
  for (const auto& row : rows) {
    EXPECT_EQ(row["n_threads"], 1);
    EXPECT_EQ(row["n_parallel"], 1);
    const auto ts = expect_rates_match_times(row, 3);
    ASSERT_EQ(ts.size(), 3u);
    EXPECT_NEAR(row["avg_ts"].get<double>(), std::accumulate(ts.begin(), ts.end(), 0.0) / 3, 1e-6 * row["avg_ts"].get<double>());
    EXPECT_GT(row["avg_ts"].get<double>(), 0);
    EXPECT_GE(row["stddev_ts"].get<double>(), 0);
  }
  EXPECT_EQ(test_names(rows), (std::vector<std::string>{"pp16", "tg4", "pp16 @ d16", "tg4 @ d16"}));
}

TEST(BenchCli, ParallelSequencesCountEveryTokenAndActivationsAreLabelled) {
  TempDir d;
  const json rows = bench_json("-m v4-tiny -p 8 -n 4 -P 1,3 -r 2 --warmup 0 -t 1 --bf16-activations", d);
  ASSERT_EQ(rows.size(), 4u);
  for (const auto& row : rows) {
    EXPECT_EQ(row["activations"], "bf16");
    expect_rates_match_times(row, 2);  // t/s counts the tokens of all the sequences stepped together
  }
  EXPECT_EQ(test_names(rows), (std::vector<std::string>{"pp8", "tg4", "pp8 x3", "tg4 x3"}));
  expect_usage_error(run_cli("bench -m v4-tiny -p 8 -P 0", cache_env(d)), "--parallel");
}

TEST(BenchCli, MarkdownCsvAndSqlOutputs) {
  TempDir d;
  auto md = run_cli("bench -m v4-tiny -p 8 -n 2 -r 2 -t 1", cache_env(d));
  ASSERT_EQ(md.status, 0) << md.err;
  EXPECT_NE(md.out.find("| model |"), std::string::npos) << md.out;
  EXPECT_NE(md.out.find("| pp8 |"), std::string::npos) << md.out;
  EXPECT_NE(md.out.find(" ± "), std::string::npos) << md.out;
  auto csv = run_cli("bench -m v4-tiny -p 8 -n 0 -r 2 -t 1 --format csv", cache_env(d));
  ASSERT_EQ(csv.status, 0) << csv.err;
  EXPECT_EQ(csv.out.rfind("build_commit,model,n_threads", 0), 0u) << csv.out;
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 2);

  // The SQL loads into SQLite as llama-bench's does.
  auto sql = run_cli("bench -m v4-tiny -p 8 -n 2 -r 2 -t 1 --format sql", cache_env(d));
  ASSERT_EQ(sql.status, 0) << sql.err;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.out.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  int rows = 0;
  double min_ts = -1;
  sqlite3_exec(db, "SELECT count(*), min(avg_ts) FROM test WHERE model = 'v4-tiny'", [](void* p, int, char** v, char**) {
    auto* out = static_cast<std::pair<int*, double*>*>(p);
    *out->first = std::atoi(v[0]);
    *out->second = std::atof(v[1]);
    return 0;
  }, new std::pair<int*, double*>(&rows, &min_ts), nullptr);
  sqlite3_close(db);
  EXPECT_EQ(rows, 2);
  EXPECT_GT(min_ts, 0);
}

TEST(BenchCli, BadInputIsAUsageError) {
  TempDir d;
  expect_usage_error(run_cli("bench -m v4-tiny -p 0 -n 0", cache_env(d)), "at least one test");
  expect_usage_error(run_cli("bench -m v4-tiny -p 8 -t x", cache_env(d)), "--threads");
  expect_usage_error(run_cli("bench -m v4-tiny -p 8 -d 100000", cache_env(d)), "beyond the maximum");
  expect_usage_error(run_cli("bench -m v4-pro -p 8", cache_env(d)), "v4-pro");
}
