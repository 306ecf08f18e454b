#include "reports/store/store.h"

#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <sqlite3.h>

#include "reports/store/migrations.h"
#include "reports/store/sqlite_util.h"

namespace v4b::store {

using detail::Statement;
using detail::Transaction;

namespace {

// Long enough to wait out another process's case commit (milliseconds) or a checkpoint, short
// enough that a wedged writer is reported rather than hanging a run forever.
constexpr int kBusyTimeoutMs = 15000;

constexpr const char* kNow = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

// Replacing invalid UTF-8 rather than throwing: a stray byte in a sample must not lose the case.
std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json parse_json(const std::string& path, const std::string& text, std::string_view where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    throw StoreError(fmt::format("{} is corrupt (invalid JSON in {})", path, where));
  }
}

void check_run_status(const std::string& path, const std::string& status) {
  if (status != "running" && status != "done" && status != "failed") {
    throw StoreError(fmt::format("{}: invalid run status '{}' (expected running, done or failed)", path, status));
  }
}

constexpr std::string_view kRunColumns =
    "id, suite, model, params, engine_commit, host, seed, status, created_at, coalesce(finished_at, ''), "
    "(SELECT count(*) FROM cases WHERE cases.run_id = runs.id)";

RunInfo read_run(const std::string& path, const Statement& q) {
  RunInfo r;
  r.id = q.column_int(0);
  r.suite = q.column_text(1);
  r.model = q.column_text(2);
  r.params = parse_json(path, q.column_text(3), fmt::format("params of run {}", r.id));
  r.engine_commit = q.column_text(4);
  r.host = parse_json(path, q.column_text(5), fmt::format("host of run {}", r.id));
  r.seed = static_cast<uint64_t>(q.column_int(6));
  r.status = q.column_text(7);
  r.created_at = q.column_text(8);
  r.finished_at = q.column_text(9);
  r.n_cases = q.column_int(10);
  return r;
}

// Refuses any SQLite file v4bench did not create. Ours carry kApplicationId; a pristine file
// (new, zero-length, or emptied) has no tables and no ids and becomes ours on migration.
void check_identity(sqlite3* db, const std::string& path) {
  // The first read of the file: a non-database or corrupt header fails here with a clear message.
  Statement tables(db, path,
                   "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                   "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                   "reading the schema");
  std::vector<std::string> names;
  while (tables.step()) names.push_back(tables.column_text(0));
  Statement app(db, path, "PRAGMA application_id", "reading the schema");
  int64_t app_id = app.step() ? app.column_int(0) : 0;
  Statement ver(db, path, "PRAGMA user_version", "reading the schema");
  int64_t version = ver.step() ? ver.column_int(0) : 0;

  if (app_id == detail::kApplicationId) {
    if (version > kSchemaVersion) detail::raise_newer_schema(path, version);
    return;
  }
  if (app_id == 0 && names.empty() && version == 0) return;
  std::string tables_desc;
  for (size_t i = 0; i < names.size() && i < 3; ++i) tables_desc += fmt::format("{}{}", i ? ", " : "", names[i]);
  if (names.size() > 3) tables_desc += ", ...";
  throw StoreError(fmt::format("{} is not a v4bench database (an SQLite database of another program: "
                               "application_id {:#x}, user_version {}, tables: {})",
                               path, app_id, version, names.empty() ? "none" : tables_desc));
}

}  // namespace

Store::Store(const std::string& path) : path_(path) {
  namespace fs = std::filesystem;
  if (path.empty()) throw StoreError("empty database path");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw StoreError(fmt::format("{} is a directory, not a database file", path));
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) throw StoreError(fmt::format("{}: cannot create directory {} ({})", path, parent.string(), ec.message()));
  }

  int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  try {
    if (rc != SQLITE_OK) detail::raise(db_, path_, rc, "opening");
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    // SQLite silently opens a write-protected file read-only; results could never be saved.
    if (sqlite3_db_readonly(db_, "main") == 1) {
      throw StoreError(fmt::format("{} is read-only (no permission to write it)", path_));
    }
    check_identity(db_, path_);
    // WAL lets readers (reports, resume checks) run while a benchmark commits cases, and
    // synchronous=NORMAL is still crash-safe in WAL: a power cut can lose only the last commits.
    Statement wal(db_, path_, "PRAGMA journal_mode = WAL", "switching to WAL mode");
    wal.run();
    detail::exec(db_, path_, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", "configuring the connection");
    detail::migrate(db_, path_);
  } catch (...) {
    sqlite3_close_v2(db_);  // the destructor will not run for a throwing constructor
    db_ = nullptr;
    throw;
  }
}

Store::~Store() { sqlite3_close_v2(db_); }

int Store::schema_version() const {
  Statement q(db_, path_, "PRAGMA user_version");
  return q.step() ? static_cast<int>(q.column_int(0)) : 0;
}

int64_t Store::create_run(const NewRun& run) {
  Statement q(db_, path_,
              fmt::format("INSERT INTO runs (suite, model, params, engine_commit, host, seed, status, created_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, 'running', {})",
                          kNow),
              "creating a run");
  q.bind_text(1, run.suite)
      .bind_text(2, run.model)
      .bind_text(3, dump_json(run.params))
      .bind_text(4, run.engine_commit)
      .bind_text(5, dump_json(run.host))
      .bind_int(6, static_cast<int64_t>(run.seed));  // SQLite integers are signed 64-bit; keep the bits
  q.run();
  return sqlite3_last_insert_rowid(db_);
}

void Store::set_run_status(int64_t run_id, const std::string& status) {
  check_run_status(path_, status);
  // Back to "running" (a resumed run) clears finished_at; done and failed stamp it.
  Statement q(db_, path_,
              fmt::format("UPDATE runs SET status = ?1, finished_at = CASE WHEN ?1 = 'running' THEN NULL ELSE {} END "
                          "WHERE id = ?2",
                          kNow),
              "updating a run's status");
  q.bind_text(1, status).bind_int(2, run_id);
  q.run();
  if (sqlite3_changes(db_) == 0) throw StoreError(fmt::format("{}: no run {}", path_, run_id));
}

std::optional<RunInfo> Store::run(int64_t run_id) const {
  Statement q(db_, path_, fmt::format("SELECT {} FROM runs WHERE id = ?", kRunColumns), "reading a run");
  q.bind_int(1, run_id);
  if (!q.step()) return std::nullopt;
  return read_run(path_, q);
}

std::vector<RunInfo> Store::list_runs(const RunFilter& filter) const {
  Statement q(db_, path_,
              fmt::format("SELECT {} FROM runs WHERE (?1 = '' OR suite = ?1) AND (?2 = '' OR instr(model, ?2) > 0) "
                          "AND (?4 = '' OR created_at >= ?4) AND (?5 = '' OR substr(created_at, 1, length(?5)) <= ?5) "
                          "ORDER BY created_at DESC, id DESC LIMIT ?3",
                          kRunColumns),
              "listing runs");
  q.bind_text(1, filter.suite)
      .bind_text(2, filter.model)
      .bind_int(3, filter.limit > 0 ? filter.limit : -1)
      .bind_text(4, filter.since)
      .bind_text(5, filter.until);
  std::vector<RunInfo> out;
  while (q.step()) out.push_back(read_run(path_, q));
  return out;
}

bool Store::delete_run(int64_t run_id) {
  Statement q(db_, path_, "DELETE FROM runs WHERE id = ?", fmt::format("deleting run {}", run_id));
  q.bind_int(1, run_id);
  q.step();
  return sqlite3_changes(db_) > 0;
}

// Non-finite metric values (and wall times) are stored as NULL and read back as NaN: SQLite
// turns NaN into NULL anyway, and JSON exports cannot carry inf. A case whose measurement blew
// up is still worth keeping, so they are not rejected.
void Store::commit_case(int64_t run_id, const CaseRecord& c) {
  if (c.status != "ok" && c.status != "failed") {
    throw StoreError(fmt::format("{}: invalid status '{}' for case '{}' (expected ok or failed)", path_, c.status, c.key));
  }
  const std::string what = fmt::format("writing case '{}' of run {}", c.key, run_id);
  Transaction txn(db_, path_);

  // Checked inside the transaction so the answer cannot change before the insert.
  Statement run_q(db_, path_, "SELECT 1 FROM runs WHERE id = ?", what);
  run_q.bind_int(1, run_id);
  if (!run_q.step()) throw StoreError(fmt::format("{}: no run {}", path_, run_id));
  Statement dup_q(db_, path_, "SELECT 1 FROM cases WHERE run_id = ? AND key = ?", what);
  dup_q.bind_int(1, run_id).bind_text(2, c.key);
  if (dup_q.step()) throw StoreError(fmt::format("{}: run {} already has a case '{}'", path_, run_id, c.key));

  Statement case_q(db_, path_,
                   fmt::format("INSERT INTO cases (run_id, ordinal, key, params, status, wall_s, finished_at) "
                               "VALUES (?1, (SELECT coalesce(max(ordinal), 0) + 1 FROM cases WHERE run_id = ?1), "
                               "?2, ?3, ?4, ?5, {})",
                               kNow),
                   what);
  case_q.bind_int(1, run_id).bind_text(2, c.key).bind_text(3, dump_json(c.params)).bind_text(4, c.status);
  case_q.bind_real(5, c.wall_s);
  case_q.run();
  const int64_t case_id = sqlite3_last_insert_rowid(db_);

  if (!c.metrics.empty()) {
    Statement q(db_, path_, "INSERT INTO metrics (case_id, name, value, unit) VALUES (?, ?, ?, ?)", what);
    for (const Metric& m : c.metrics) {
      q.bind_int(1, case_id).bind_text(2, m.name).bind_real(3, m.value).bind_text(4, m.unit);
      q.run();
      q.reset();
    }
  }
  if (!c.samples.empty()) {
    Statement q(db_, path_, "INSERT INTO samples (case_id, idx, details) VALUES (?, ?, ?)", what);
    for (const Sample& s : c.samples) {
      q.bind_int(1, case_id).bind_int(2, s.index).bind_text(3, dump_json(s.details));
      q.run();
      q.reset();
    }
  }
  if (!c.artifacts.empty()) {
    Statement q(db_, path_, "INSERT INTO artifacts (run_id, case_id, name, mime, content) VALUES (?, ?, ?, ?, ?)", what);
    for (const Artifact& a : c.artifacts) {
      q.bind_int(1, run_id).bind_int(2, case_id).bind_text(3, a.name).bind_text(4, a.mime).bind_blob(5, a.content);
      q.run();
      q.reset();
    }
  }
  txn.commit();
}

std::vector<std::string> Store::case_keys(int64_t run_id) const {
  Statement q(db_, path_, "SELECT key FROM cases WHERE run_id = ? ORDER BY ordinal", "reading case keys");
  q.bind_int(1, run_id);
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.column_text(0));
  return out;
}

std::vector<CaseRecord> Store::cases(int64_t run_id) const {
  // One read transaction so a concurrent writer cannot show us a case without its metrics.
  detail::exec(db_, path_, "BEGIN", "reading cases");
  struct EndRead {
    sqlite3* db;
    ~EndRead() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end_read{db_};

  Statement q(db_, path_,
              "SELECT id, key, params, status, wall_s FROM cases WHERE run_id = ? ORDER BY ordinal", "reading cases");
  Statement metrics_q(db_, path_, "SELECT name, value, unit FROM metrics WHERE case_id = ? ORDER BY rowid",
                      "reading metrics");
  Statement samples_q(db_, path_, "SELECT idx, details FROM samples WHERE case_id = ? ORDER BY idx",
                      "reading samples");
  q.bind_int(1, run_id);
  std::vector<CaseRecord> out;
  while (q.step()) {
    CaseRecord c;
    const int64_t case_id = q.column_int(0);
    c.key = q.column_text(1);
    c.params = parse_json(path_, q.column_text(2), fmt::format("params of case '{}'", c.key));
    c.status = q.column_text(3);
    c.wall_s = q.column_real(4);
    metrics_q.bind_int(1, case_id);
    while (metrics_q.step()) c.metrics.push_back({metrics_q.column_text(0), metrics_q.column_real(1), metrics_q.column_text(2)});
    metrics_q.reset();
    samples_q.bind_int(1, case_id);
    while (samples_q.step()) {
      c.samples.push_back({samples_q.column_int(0),
                           parse_json(path_, samples_q.column_text(1), fmt::format("a sample of case '{}'", c.key))});
    }
    samples_q.reset();
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<Artifact> Store::artifacts(int64_t run_id) const {
  Statement q(db_, path_, "SELECT name, mime, content FROM artifacts WHERE run_id = ? ORDER BY id",
              "reading artifacts");
  q.bind_int(1, run_id);
  std::vector<Artifact> out;
  while (q.step()) out.push_back({q.column_text(0), q.column_text(1), q.column_blob(2)});
  return out;
}

}  // namespace v4b::store
