// Thin RAII layer over the SQLite C API for the store. Private to reports/store.
// Every failure becomes a one-line StoreError naming the database file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <sqlite3.h>

#include "reports/store/store.h"

namespace v4b::store::detail {

// Throws a StoreError for SQLite result code `rc`, worded by its kind (not a database, corrupt,
// locked, read-only, ...); `what` says what the store was doing.
[[noreturn]] void raise(sqlite3* db, const std::string& path, int rc, std::string_view what);

// Runs one or more statements with no results.
void exec(sqlite3* db, const std::string& path, const std::string& sql, std::string_view what);

class Statement {
 public:
  // `what` names the operation in error messages, e.g. "reading runs".
  Statement(sqlite3* db, const std::string& path, std::string_view sql, std::string_view what = "reading the database");
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based, as in SQLite.
  Statement& bind_int(int i, int64_t v);
  Statement& bind_real(int i, double v);  // non-finite binds NULL
  Statement& bind_text(int i, std::string_view v);
  Statement& bind_blob(int i, std::string_view v);
  Statement& bind_null(int i);

  bool step();  // true when a row is ready
  void run();   // steps a statement that returns no rows
  void reset();

  // Columns are 0-based.
  bool is_null(int i) const;
  int64_t column_int(int i) const;
  double column_real(int i) const;  // NULL reads as NaN
  std::string column_text(int i) const;
  std::string column_blob(int i) const;

 private:
  void check_bind(int rc);

  sqlite3* db_;
  const std::string& path_;
  std::string what_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE so the write lock is taken up front (waiting out busy_timeout) rather than on
// the first write, where a reader-turned-writer can fail with SQLITE_BUSY without waiting.
// Rolls back unless commit() was reached.
class Transaction {
 public:
  Transaction(sqlite3* db, const std::string& path);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  sqlite3* db_;
  const std::string& path_;
  bool open_ = true;
};

}  // namespace v4b::store::detail
