#include "reports/store/sqlite_util.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace v4b::store::detail {

void raise(sqlite3* db, const std::string& path, int rc, std::string_view what) {
  std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  // A prepare or step error leaves the connection's message; a bare rc may not match it.
  if (db && sqlite3_errcode(db) != rc) detail = sqlite3_errstr(rc);
  std::string msg;
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
      msg = fmt::format("{} is not a v4bench database ({})", path, detail);
      break;
    case SQLITE_CORRUPT:
      msg = fmt::format("{} is corrupt ({}) while {}", path, detail, what);
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      msg = fmt::format("{} is locked by another process; gave up {} ({})", path, what, detail);
      break;
    case SQLITE_READONLY:
      msg = fmt::format("{} is read-only; cannot finish {} ({})", path, what, detail);
      break;
    case SQLITE_CANTOPEN:
      msg = fmt::format("{}: cannot open ({})", path, detail);
      break;
    case SQLITE_FULL:
      msg = fmt::format("{}: disk full while {}", path, what);
      break;
    default:
      msg = fmt::format("{}: {} failed ({})", path, what, detail);
  }
  std::replace(msg.begin(), msg.end(), '\n', ' ');  // the contract is one line
  throw StoreError(msg);
}

void exec(sqlite3* db, const std::string& path, const std::string& sql, std::string_view what) {
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) raise(db, path, rc, what);
}

Statement::Statement(sqlite3* db, const std::string& path, std::string_view sql, std::string_view what)
    : db_(db), path_(path), what_(what) {
  int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) raise(db_, path_, rc, what_);
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::check_bind(int rc) {
  if (rc != SQLITE_OK) raise(db_, path_, rc, what_);
}

Statement& Statement::bind_int(int i, int64_t v) {
  check_bind(sqlite3_bind_int64(stmt_, i, v));
  return *this;
}

Statement& Statement::bind_real(int i, double v) {
  check_bind(std::isfinite(v) ? sqlite3_bind_double(stmt_, i, v) : sqlite3_bind_null(stmt_, i));
  return *this;
}

Statement& Statement::bind_text(int i, std::string_view v) {
  check_bind(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

Statement& Statement::bind_blob(int i, std::string_view v) {
  // A zero-length blob must stay a blob, not NULL, so give SQLite a non-null pointer.
  check_bind(sqlite3_bind_blob64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT));
  return *this;
}

Statement& Statement::bind_null(int i) {
  check_bind(sqlite3_bind_null(stmt_, i));
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  raise(db_, path_, rc, what_);
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);  // errors were already reported by step()
  sqlite3_clear_bindings(stmt_);
}

bool Statement::is_null(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

int64_t Statement::column_int(int i) const { return sqlite3_column_int64(stmt_, i); }

double Statement::column_real(int i) const {
  return is_null(i) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(stmt_, i);
}

std::string Statement::column_text(int i) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
}

std::string Statement::column_blob(int i) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
}

Transaction::Transaction(sqlite3* db, const std::string& path) : db_(db), path_(path) {
  exec(db_, path_, "BEGIN IMMEDIATE", "starting a write transaction");
}

Transaction::~Transaction() {
  if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);  // best effort: we are unwinding
}

void Transaction::commit() {
  exec(db_, path_, "COMMIT", "committing");
  open_ = false;
}

}  // namespace v4b::store::detail
