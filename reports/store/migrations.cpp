#include "reports/store/migrations.h"

#include <fmt/format.h>

#include "reports/store/sqlite_util.h"

namespace v4b::store::detail {

// Times are ISO-8601 UTC with milliseconds, e.g. 2025-01-31T12:00:00.123Z, so they sort as text.
// JSON columns hold compact text; the CHECKs keep a broken writer from storing what we cannot parse.
// Metric values and wall times are NULL when non-finite (see Store::commit_case).
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE runs (
  id            INTEGER PRIMARY KEY,
  suite         TEXT NOT NULL,
  model         TEXT NOT NULL,
  params        TEXT NOT NULL CHECK (json_valid(params)),
  engine_commit TEXT NOT NULL,
  host          TEXT NOT NULL CHECK (json_valid(host)),
  seed          INTEGER NOT NULL,  -- the uint64 seed's bits as int64
  status        TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
  created_at    TEXT NOT NULL,
  finished_at   TEXT
);
CREATE INDEX runs_by_created ON runs (created_at);
CREATE INDEX runs_by_suite ON runs (suite, created_at);

CREATE TABLE cases (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  ordinal     INTEGER NOT NULL,  -- 1, 2, ... within the run, in commit order
  key         TEXT NOT NULL,
  params      TEXT NOT NULL CHECK (json_valid(params)),
  status      TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
  wall_s      REAL,
  finished_at TEXT NOT NULL,
  UNIQUE (run_id, key),
  UNIQUE (run_id, ordinal)
);

CREATE TABLE metrics (
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  name    TEXT NOT NULL,
  value   REAL,
  unit    TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (case_id, name)
);

CREATE TABLE samples (
  case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  idx     INTEGER NOT NULL,
  details TEXT NOT NULL CHECK (json_valid(details)),
  UNIQUE (case_id, idx)
);

CREATE TABLE artifacts (
  id      INTEGER PRIMARY KEY,
  run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  case_id INTEGER REFERENCES cases (id) ON DELETE CASCADE,  -- NULL for a run-level artifact
  name    TEXT NOT NULL,
  mime    TEXT NOT NULL,
  content BLOB NOT NULL
);
CREATE INDEX artifacts_by_run ON artifacts (run_id);
CREATE INDEX artifacts_by_case ON artifacts (case_id);
)sql";

const std::array<std::string_view, kSchemaVersion> kMigrations = {kSchemaV1};

[[noreturn]] void raise_newer_schema(const std::string& path, int64_t version) {
  throw StoreError(fmt::format("{} has schema version {}; this v4bench supports up to {} — upgrade v4bench",
                               path, version, kSchemaVersion));
}

namespace {

int64_t user_version(sqlite3* db, const std::string& path) {
  Statement q(db, path, "PRAGMA user_version");
  return q.step() ? q.column_int(0) : 0;
}

}  // namespace

void migrate(sqlite3* db, const std::string& path) {
  // Checked outside a transaction first so opening an up-to-date database never takes the write lock.
  if (user_version(db, path) == kSchemaVersion) return;
  Transaction txn(db, path);
  // Another process may have migrated between the check and BEGIN IMMEDIATE.
  int64_t version = user_version(db, path);
  if (version > kSchemaVersion) raise_newer_schema(path, version);
  if (version == kSchemaVersion) return;
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    exec(db, path, std::string(kMigrations[static_cast<size_t>(v)]),
         fmt::format("migrating the schema to version {}", v + 1));
  }
  // PRAGMAs take no parameters; both values are our own integers.
  exec(db, path, fmt::format("PRAGMA user_version = {}; PRAGMA application_id = {}", kSchemaVersion, kApplicationId),
       "stamping the schema version");
  txn.commit();
}

}  // namespace v4b::store::detail
