#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "reports/store/migrations.h"
#include "reports/store/store.h"

namespace fs = std::filesystem;
using v4b::store::Artifact;
using v4b::store::CaseRecord;
using v4b::store::Metric;
using v4b::store::NewRun;
using v4b::store::RunFilter;
using v4b::store::Sample;
using v4b::store::Store;
using v4b::store::StoreError;

namespace {

class StoreTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "v4b_store_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

// Direct SQLite access, to set up files the store did not write and to look behind its back.
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// First column of the first row as text ("" when no row).
std::string query_text(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql << ": " << sqlite3_errmsg(db);
  std::string out;
  if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  return out;
}

int64_t query_int(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql << ": " << sqlite3_errmsg(db);
  int64_t out = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_finalize(st);
  return out;
}

// Opens read-only with its own connection, as a report reader or a polling parent would.
int64_t raw_int(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  sqlite3_busy_timeout(db, 5000);
  int64_t v = query_int(db, sql);
  sqlite3_close(db);
  return v;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The StoreError message from opening `path`, or "" if it opened. Checks the one-line contract.
std::string open_error(const std::string& path) {
  try {
    Store s(path);
  } catch (const StoreError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << "message should name the file: " << msg;
    return msg;
  }
  return "";
}

NewRun sample_run(const std::string& suite = "kv", const std::string& model = "v4-pro") {
  NewRun r;
  r.suite = suite;
  r.model = model;
  r.params = {{"ctx", {4096, 8192}}, {"dtype", "fp8"}, {"nested", {{"a", 1.5}, {"list", {1, "two", nullptr}}}}};
  r.engine_commit = "0123456789ab";
  r.host = {{"cpu", "test cpu"}, {"gpus", {{{"name", "H200"}, {"mem_gib", 139}}}}, {"unicode", "ü→✓"}};
  r.seed = 0xFFFFFFFFFFFFFFF0ULL;  // above INT64_MAX: must survive SQLite's signed integers
  return r;
}

CaseRecord make_case(const std::string& key, int n_metrics = 4) {
  CaseRecord c;
  c.key = key;
  c.params = {{"key", key}, {"ctx", 4096}};
  c.wall_s = 0.25;
  for (int i = 0; i < n_metrics; ++i) c.metrics.push_back({fmt::format("m{}", i), i * 1.5, i % 2 ? "ms" : ""});
  c.samples.push_back({0, {{"prompt", "hi"}, {"tokens", 3}}});
  return c;
}

void expect_same_case(const CaseRecord& got, const CaseRecord& want) {
  EXPECT_EQ(got.key, want.key);
  EXPECT_EQ(got.params, want.params);
  EXPECT_EQ(got.status, want.status);
  EXPECT_DOUBLE_EQ(got.wall_s, want.wall_s);
  ASSERT_EQ(got.metrics.size(), want.metrics.size()) << got.key;
  for (size_t i = 0; i < want.metrics.size(); ++i) {
    EXPECT_EQ(got.metrics[i].name, want.metrics[i].name);
    EXPECT_DOUBLE_EQ(got.metrics[i].value, want.metrics[i].value);
    EXPECT_EQ(got.metrics[i].unit, want.metrics[i].unit);
  }
  ASSERT_EQ(got.samples.size(), want.samples.size()) << got.key;
  for (size_t i = 0; i < want.samples.size(); ++i) {
    EXPECT_EQ(got.samples[i].index, want.samples[i].index);
    EXPECT_EQ(got.samples[i].details, want.samples[i].details);
  }
}

const std::regex kIsoUtc(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");

}  // namespace

TEST_F(StoreTest, FreshDatabaseHasSchemaApplicationIdAndWal) {
  const std::string path = file("nested/dirs/results.db");  // parent directories are created
  Store s(path);
  EXPECT_EQ(s.path(), path);
  EXPECT_EQ(s.schema_version(), 1);
  EXPECT_EQ(query_int(s.handle(), "PRAGMA application_id"), v4b::store::detail::kApplicationId);
  EXPECT_EQ(query_text(s.handle(), "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query_int(s.handle(), "PRAGMA foreign_keys"), 1);
  EXPECT_GE(query_int(s.handle(), "PRAGMA busy_timeout"), 10000);
  for (const char* table : {"runs", "cases", "metrics", "samples", "artifacts"}) {
    EXPECT_EQ(query_int(s.handle(), fmt::format("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{}'",
                                                table)),
              1)
        << table;
  }
  EXPECT_TRUE(s.list_runs().empty());
  EXPECT_FALSE(s.run(1).has_value());
}

TEST_F(StoreTest, RoundTripKeepsJsonCommitOrderAndArtifacts) {
  const std::string path = file("results.db");
  NewRun nr = sample_run();
  CaseRecord b = make_case("model=v4-pro|ctx=8192", 3);
  b.metrics.push_back({"a_last_inserted", 42, "tok/s"});  // read back in insertion order, not by name
  b.samples = {{0, {{"text", "zero"}}}, {1, {{"text", "one"}, {"score", 0.5}}}, {7, nlohmann::json::array({1, 2})}};
  b.artifacts = {{"plot.svg", "image/svg+xml", "<svg/>"}, {"raw.bin", "application/octet-stream", std::string("\0\x01\xff", 3)}};
  CaseRecord a = make_case("model=v4-pro|ctx=4096", 2);
  a.status = "failed";
  a.artifacts = {{"empty.txt", "text/plain", ""}};

  int64_t id = 0;
  {
    Store s(path);
    id = s.create_run(nr);
    EXPECT_GT(id, 0);
    s.commit_case(id, b);  // b before a: commit order is not key order
    s.commit_case(id, a);
  }
  Store s(path);  // a fresh connection reads what is on disk
  auto info = s.run(id);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->id, id);
  EXPECT_EQ(info->suite, nr.suite);
  EXPECT_EQ(info->model, nr.model);
  EXPECT_EQ(info->params, nr.params);
  EXPECT_EQ(info->host, nr.host);
  EXPECT_EQ(info->engine_commit, nr.engine_commit);
  EXPECT_EQ(info->seed, nr.seed);
  EXPECT_EQ(info->status, "running");
  EXPECT_TRUE(std::regex_match(info->created_at, kIsoUtc)) << info->created_at;
  EXPECT_EQ(info->finished_at, "");
  EXPECT_EQ(info->n_cases, 2);

  EXPECT_EQ(s.case_keys(id), (std::vector<std::string>{b.key, a.key}));
  auto got = s.cases(id);
  ASSERT_EQ(got.size(), 2u);
  expect_same_case(got[0], b);
  expect_same_case(got[1], a);
  EXPECT_TRUE(got[0].artifacts.empty());  // cases() leaves artifacts to artifacts()

  auto arts = s.artifacts(id);
  ASSERT_EQ(arts.size(), 3u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(arts[i].name, b.artifacts[i].name);
    EXPECT_EQ(arts[i].mime, b.artifacts[i].mime);
    EXPECT_EQ(arts[i].content, b.artifacts[i].content);
  }
  EXPECT_EQ(arts[2].name, "empty.txt");
  EXPECT_EQ(arts[2].content, "");
  // Artifacts carry both the run and the case that made them.
  EXPECT_EQ(query_int(s.handle(), "SELECT count(*) FROM artifacts a JOIN cases c ON a.case_id = c.id "
                                  "WHERE a.run_id = c.run_id"),
            3);

  s.set_run_status(id, "done");
  info = s.run(id);
  EXPECT_EQ(info->status, "done");
  EXPECT_TRUE(std::regex_match(info->finished_at, kIsoUtc)) << info->finished_at;
  EXPECT_GE(info->finished_at, info->created_at);
  s.set_run_status(id, "running");  // resuming clears the stamp
  EXPECT_EQ(s.run(id)->finished_at, "");
  EXPECT_THROW(s.set_run_status(id, "finished"), StoreError);
  EXPECT_THROW(s.set_run_status(id + 100, "done"), StoreError);
}

TEST_F(StoreTest, NonFiniteMetricsReadBackAsNaN) {
  Store s(file("results.db"));
  int64_t id = s.create_run(sample_run());
  CaseRecord c = make_case("k", 0);
  c.metrics = {{"nan", std::numeric_limits<double>::quiet_NaN(), ""},
               {"inf", std::numeric_limits<double>::infinity(), "s"},
               {"ok", 2.5, ""}};
  c.wall_s = -std::numeric_limits<double>::infinity();
  s.commit_case(id, c);
  auto got = s.cases(id);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].metrics.size(), 3u);
  EXPECT_TRUE(std::isnan(got[0].metrics[0].value));
  EXPECT_TRUE(std::isnan(got[0].metrics[1].value));
  EXPECT_EQ(got[0].metrics[1].unit, "s");
  EXPECT_EQ(got[0].metrics[2].value, 2.5);
  EXPECT_TRUE(std::isnan(got[0].wall_s));
  EXPECT_EQ(query_int(s.handle(), "SELECT count(*) FROM metrics WHERE value IS NULL"), 2);
}

TEST_F(StoreTest, ListRunsNewestFirstWithFilter) {
  Store s(file("results.db"));
  int64_t r1 = s.create_run(sample_run("kv", "v4-pro"));
  int64_t r2 = s.create_run(sample_run("gsm8k", "v4-pro,v4-flash"));
  int64_t r3 = s.create_run(sample_run("kv", "v4-flash"));
  s.commit_case(r1, make_case("a"));
  s.commit_case(r1, make_case("b"));
  s.commit_case(r3, make_case("a"));  // the same key in another run is fine

  auto ids = [](const std::vector<v4b::store::RunInfo>& runs) {
    std::vector<int64_t> out;
    for (const auto& r : runs) out.push_back(r.id);
    return out;
  };
  auto all = s.list_runs();
  EXPECT_EQ(ids(all), (std::vector<int64_t>{r3, r2, r1}));
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].n_cases, 1);
  EXPECT_EQ(all[1].n_cases, 0);
  EXPECT_EQ(all[2].n_cases, 2);
  EXPECT_EQ(all[2].params, sample_run().params);
  EXPECT_EQ(ids(s.list_runs({.suite = "kv"})), (std::vector<int64_t>{r3, r1}));
  EXPECT_EQ(ids(s.list_runs({.model = "flash"})), (std::vector<int64_t>{r3, r2}));
  EXPECT_EQ(ids(s.list_runs({.suite = "kv", .model = "pro"})), (std::vector<int64_t>{r1}));
  EXPECT_EQ(ids(s.list_runs({.model = "%"})), std::vector<int64_t>{});  // substring, not a LIKE pattern
  EXPECT_EQ(ids(s.list_runs({.limit = 2})), (std::vector<int64_t>{r3, r2}));
}

TEST_F(StoreTest, MigratesEmptyVersionZeroDatabaseAndReopenIsNoOp) {
  const std::string path = file("old.db");
  // A real SQLite file (header written) with no tables and user_version 0.
  raw_exec(path, "CREATE TABLE scratch (x); DROP TABLE scratch;");
  ASSERT_EQ(raw_int(path, "PRAGMA user_version"), 0);
  ASSERT_GT(fs::file_size(path), 0u);

  int64_t cookie = 0;
  int64_t id = 0;
  {
    Store s(path);
    EXPECT_EQ(s.schema_version(), 1);
    EXPECT_EQ(query_int(s.handle(), "PRAGMA application_id"), v4b::store::detail::kApplicationId);
    EXPECT_EQ(query_int(s.handle(), "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'metrics'"), 1);
    id = s.create_run(sample_run());
    s.commit_case(id, make_case("c0"));
    cookie = query_int(s.handle(), "PRAGMA schema_version");  // bumped by every schema change
  }
  Store s(path);
  EXPECT_EQ(s.schema_version(), 1);
  EXPECT_EQ(query_int(s.handle(), "PRAGMA schema_version"), cookie) << "reopening must not touch the schema";
  EXPECT_EQ(s.case_keys(id), std::vector<std::string>{"c0"});
  EXPECT_EQ(v4b::store::detail::kMigrations.size(), static_cast<size_t>(v4b::store::kSchemaVersion));
}

TEST_F(StoreTest, DuplicateCaseKeyRejectedWithNothingPartial) {
  Store s(file("results.db"));
  int64_t id = s.create_run(sample_run());
  s.commit_case(id, make_case("k", 2));
  auto count = [&](const char* table) { return query_int(s.handle(), fmt::format("SELECT count(*) FROM {}", table)); };

  CaseRecord dup = make_case("k", 5);
  dup.artifacts = {{"x.txt", "text/plain", "x"}};
  try {
    s.commit_case(id, dup);
    FAIL() << "duplicate key accepted";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("'k'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(count("cases"), 1);
  EXPECT_EQ(count("metrics"), 2);
  EXPECT_EQ(count("samples"), 1);
  EXPECT_EQ(count("artifacts"), 0);

  // A failure after the case row is written (a repeated metric name) rolls back the whole case.
  CaseRecord bad = make_case("k2", 3);
  bad.metrics.push_back(bad.metrics[0]);
  EXPECT_THROW(s.commit_case(id, bad), StoreError);
  EXPECT_EQ(s.case_keys(id), std::vector<std::string>{"k"});
  EXPECT_EQ(count("metrics"), 2);
  EXPECT_EQ(count("samples"), 1);

  EXPECT_THROW(s.commit_case(id + 1, make_case("other")), StoreError);  // no such run
  CaseRecord bad_status = make_case("k3");
  bad_status.status = "skipped";
  EXPECT_THROW(s.commit_case(id, bad_status), StoreError);
  EXPECT_EQ(count("cases"), 1);

  s.commit_case(id, make_case("k2"));  // the connection is still usable after the failures
  EXPECT_EQ(s.case_keys(id), (std::vector<std::string>{"k", "k2"}));
}

TEST_F(StoreTest, ResumeAfterKillKeepsEveryCommittedCaseWhole) {
  const std::string path = file("resume.db");
  constexpr int kPlanned = 40;
  constexpr int kMetrics = 4;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: a benchmark that commits cases until it is killed. Never returns into gtest.
    close(fds[0]);
    try {
      Store s(path);
      int64_t id = s.create_run(sample_run());
      if (write(fds[1], &id, sizeof id) != sizeof id) _exit(3);
      close(fds[1]);
      for (int i = 0;; ++i) {
        s.commit_case(id, make_case(fmt::format("c{}", i), kMetrics));
        usleep(10000);
      }
    } catch (const std::exception& e) {
      fmt::print(stderr, "child: {}\n", e.what());
    }
    _exit(2);
  }
  close(fds[1]);
  int64_t id = 0;
  ssize_t got = read(fds[0], &id, sizeof id);
  close(fds[0]);
  if (got != static_cast<ssize_t>(sizeof id)) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    FAIL() << "child did not create a run";
  }

  int64_t seen = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (seen < 5 && std::chrono::steady_clock::now() < deadline) {
    seen = raw_int(path, fmt::format("SELECT count(*) FROM cases WHERE run_id = {}", id));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  kill(pid, SIGKILL);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited early with status " << WEXITSTATUS(wstatus);
  ASSERT_GE(seen, 5) << "child committed too slowly";

  Store s(path);
  auto committed = s.cases(id);
  ASSERT_GE(committed.size(), 5u);
  ASSERT_LT(committed.size(), static_cast<size_t>(kPlanned)) << "child outran the plan; the test proves little";
  for (size_t i = 0; i < committed.size(); ++i) {
    EXPECT_EQ(committed[i].key, fmt::format("c{}", i));
    EXPECT_EQ(committed[i].metrics.size(), static_cast<size_t>(kMetrics)) << committed[i].key;
    EXPECT_EQ(committed[i].samples.size(), 1u) << committed[i].key;
  }

  // Resume: re-plan, skip what is there, commit the rest.
  std::vector<std::string> plan;
  for (int i = 0; i < kPlanned; ++i) plan.push_back(fmt::format("c{}", i));
  auto have_keys = s.case_keys(id);
  std::set<std::string> have(have_keys.begin(), have_keys.end());
  int resumed = 0;
  for (const auto& key : plan) {
    if (have.count(key)) continue;
    s.commit_case(id, make_case(key, kMetrics));
    ++resumed;
  }
  EXPECT_EQ(resumed, kPlanned - static_cast<int>(committed.size()));
  s.set_run_status(id, "done");

  auto final_keys = s.case_keys(id);
  EXPECT_EQ(final_keys.size(), plan.size());
  std::set<std::string> final_set(final_keys.begin(), final_keys.end());
  EXPECT_EQ(final_set.size(), final_keys.size()) << "duplicate keys";
  EXPECT_EQ(final_set, std::set<std::string>(plan.begin(), plan.end()));
  EXPECT_EQ(query_int(s.handle(), "SELECT count(*) FROM metrics"), kPlanned * kMetrics);
  EXPECT_EQ(s.run(id)->n_cases, kPlanned);
}

TEST_F(StoreTest, TwoProcessesWriteOneDatabaseAtOnce) {
  const std::string path = file("shared.db");
  constexpr int kPerChild = 50;
  int64_t id = 0;
  {
    Store s(path);
    id = s.create_run(sample_run());
  }  // closed before fork: a child must never inherit an open SQLite connection

  int go[2];
  ASSERT_EQ(pipe(go), 0);
  std::vector<pid_t> pids;
  for (const char* prefix : {"a", "b"}) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(go[1]);
      int code = 0;
      try {
        Store s(path);
        char c;
        (void)!read(go[0], &c, 1);  // both start together when the parent closes the pipe
        for (int i = 0; i < kPerChild; ++i) s.commit_case(id, make_case(fmt::format("{}{}", prefix, i)));
      } catch (const std::exception& e) {
        fmt::print(stderr, "child {}: {}\n", prefix, e.what());
        code = 1;
      }
      _exit(code);
    }
    pids.push_back(pid);
  }
  close(go[0]);
  close(go[1]);
  for (pid_t pid : pids) {
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "child failed, status " << wstatus;
  }

  Store s(path);
  auto keys = s.case_keys(id);
  ASSERT_EQ(keys.size(), 2u * kPerChild);
  // Each writer's cases appear in its own commit order, whatever the interleaving.
  for (const char* prefix : {"a", "b"}) {
    std::vector<std::string> mine, want;
    for (const auto& k : keys) {
      if (k.rfind(prefix, 0) == 0) mine.push_back(k);
    }
    for (int i = 0; i < kPerChild; ++i) want.push_back(fmt::format("{}{}", prefix, i));
    EXPECT_EQ(mine, want);
  }
  EXPECT_EQ(query_int(s.handle(), "SELECT count(*) FROM metrics"), 2 * kPerChild * 4);
}

TEST_F(StoreTest, NewerSchemaRefused) {
  const std::string path = file("future.db");
  { Store s(path); }
  raw_exec(path, "PRAGMA user_version = 99");
  std::string msg = open_error(path);
  EXPECT_NE(msg.find("schema version 99"), std::string::npos) << msg;
  EXPECT_NE(msg.find("up to 1"), std::string::npos) << msg;
  EXPECT_EQ(raw_int(path, "PRAGMA user_version"), 99);  // left alone
}

TEST_F(StoreTest, CorruptFilesThrowOrOpenButNeverCrash) {
  // Random bytes.
  std::mt19937 rng(42);
  std::string noise(8192, '\0');
  for (char& ch : noise) ch = static_cast<char>(rng());
  write_file(file("random.db"), noise);
  EXPECT_NE(open_error(file("random.db")).find("is not a v4bench database"), std::string::npos);

  // A text file.
  std::string text;
  for (int i = 0; i < 100; ++i) text += fmt::format("line {}: not a database\n", i);
  write_file(file("notes.txt"), text);
  EXPECT_NE(open_error(file("notes.txt")).find("is not a v4bench database"), std::string::npos);

  // A zero-length file becomes a new database.
  write_file(file("empty.db"), "");
  EXPECT_EQ(open_error(file("empty.db")), "");
  EXPECT_EQ(Store(file("empty.db")).schema_version(), 1);

  // The first 1000 bytes of a real database with data in it.
  {
    Store s(file("real.db"));
    int64_t id = s.create_run(sample_run());
    for (int i = 0; i < 30; ++i) s.commit_case(id, make_case(fmt::format("c{}", i)));
  }
  std::string real = read_file(file("real.db"));
  ASSERT_GT(real.size(), 4096u);
  write_file(file("truncated.db"), real.substr(0, 1000));
  // Either outcome is fine; everything that goes wrong must be a StoreError.
  try {
    Store s(file("truncated.db"));
    (void)s.list_runs();
    int64_t id = s.create_run(sample_run());
    s.commit_case(id, make_case("c0"));
    (void)s.cases(id);
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a StoreError: " << e.what();
  }

  // A database whose page 2 onwards is garbage: the header is fine, the tables are not.
  std::string mangled = real;
  for (size_t i = 4096; i < mangled.size(); ++i) mangled[i] = static_cast<char>(rng());
  write_file(file("mangled.db"), mangled);
  try {
    Store s(file("mangled.db"));
    for (const auto& r : s.list_runs()) (void)s.cases(r.id);
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a StoreError: " << e.what();
  }
}

TEST_F(StoreTest, ForeignDatabaseRefusedAndLeftAlone) {
  const std::string path = file("other.db");
  raw_exec(path, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('hi');");
  std::string msg = open_error(path);
  EXPECT_NE(msg.find("is not a v4bench database"), std::string::npos) << msg;
  EXPECT_NE(msg.find("notes"), std::string::npos) << msg;
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'runs'"), 0);
  EXPECT_EQ(raw_int(path, "PRAGMA user_version"), 0);

  // Another program's application_id, even with no tables.
  const std::string tagged = file("tagged.db");
  raw_exec(tagged, "PRAGMA application_id = 1234; CREATE TABLE t (x); DROP TABLE t;");
  EXPECT_NE(open_error(tagged).find("0x4d2"), std::string::npos);
}

TEST_F(StoreTest, DirectoryAndUnwritablePathsRefused) {
  fs::create_directories(dir_ / "adir");
  EXPECT_NE(open_error(file("adir")).find("is a directory"), std::string::npos);

  write_file(file("plain"), "x");
  EXPECT_NE(open_error(file("plain/sub/results.db")).find("cannot create directory"), std::string::npos);

  EXPECT_THROW(Store(""), StoreError);

  if (geteuid() == 0) return;  // root ignores permissions; the rest cannot fail for it
  { Store s(file("ro.db")); }
  fs::permissions(file("ro.db"), fs::perms::owner_read);
  EXPECT_NE(open_error(file("ro.db")).find("read-only"), std::string::npos);
  fs::create_directories(dir_ / "locked");
  fs::permissions(dir_ / "locked", fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_NE(open_error(file("locked/results.db")), "");
}
