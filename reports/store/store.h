// SQLite results store: runs, cases, metrics, samples, artifacts.
// One transaction per case, so a killed run keeps every finished case and can be resumed.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace v4b::store {

// Thrown for anything wrong with the database file itself: not a database, corrupt, from a newer
// v4bench, locked for too long. The message is one line naming the file and the problem.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr int kSchemaVersion = 1;

struct Metric {
  std::string name;
  double value = 0;
  std::string unit;  // "" when dimensionless
};

// One per-sample record (a prompt, a problem, a request): free-form JSON details.
struct Sample {
  int64_t index = 0;
  nlohmann::json details;
};

struct Artifact {
  std::string name;  // e.g. "kv_vs_ctx.svg"
  std::string mime;  // e.g. "image/svg+xml"
  std::string content;
};

struct NewRun {
  std::string suite;
  std::string model;         // model label(s) as the user named them, e.g. "v4-pro,v4-flash"
  nlohmann::json params;     // the suite's full parameters; enough to re-plan the run
  std::string engine_commit;
  nlohmann::json host;       // host context
  uint64_t seed = 0;
};

struct CaseRecord {
  std::string key;           // stable within a run, e.g. "model=v4-pro|ctx=4096"
  nlohmann::json params;
  std::string status = "ok"; // ok | failed
  double wall_s = 0;
  std::vector<Metric> metrics;
  std::vector<Sample> samples;
  std::vector<Artifact> artifacts;
};

struct RunInfo {
  int64_t id = 0;
  std::string suite, model, engine_commit, status, created_at, finished_at;
  nlohmann::json params, host;
  uint64_t seed = 0;
  int64_t n_cases = 0;
};

struct RunFilter {
  std::string suite;  // "" = any
  std::string model;  // "" = any; matched as a substring of runs.model
  int limit = 0;      // 0 = no limit; newest first
  std::string since;  // "" = any; runs created at or after this ISO date/time prefix ("2026-11-28")
  std::string until;  // "" = any; runs created on or before it (a date includes the whole day)
};

class Store {
 public:
  // Opens (creating if absent, with parent directories) and migrates the database.
  // Throws StoreError for a file that is not a v4bench database, is corrupt, or has a newer schema.
  explicit Store(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  int schema_version() const;

  int64_t create_run(const NewRun& run);                 // status "running"
  void set_run_status(int64_t run_id, const std::string& status);  // running|done|failed; done/failed stamp finished_at
  std::optional<RunInfo> run(int64_t run_id) const;
  std::vector<RunInfo> list_runs(const RunFilter& filter = {}) const;
  // Deletes a run with its cases, metrics, samples and artifacts; false when there is no such run.
  bool delete_run(int64_t run_id);

  // Writes a case with its metrics, samples and artifacts in one transaction.
  // Throws StoreError if the run has a case with this key already (resume must skip it).
  void commit_case(int64_t run_id, const CaseRecord& c);
  std::vector<std::string> case_keys(int64_t run_id) const;   // in commit order
  std::vector<CaseRecord> cases(int64_t run_id) const;        // with metrics and samples, in commit order
  std::vector<Artifact> artifacts(int64_t run_id) const;

  sqlite3* handle() const { return db_; }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace v4b::store
