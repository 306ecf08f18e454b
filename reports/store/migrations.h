// Schema of the results store and the steps that build it. Private to reports/store.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "reports/store/store.h"

struct sqlite3;

namespace v4b::store::detail {

// PRAGMA application_id of every v4bench database: "V4BN" in ASCII. Lets us tell our files
// from other SQLite files without guessing from table names.
inline constexpr int32_t kApplicationId = 0x5634424E;

// kMigrations[i] takes the schema from user_version i to i + 1. To add version 2, append one
// entry and bump kSchemaVersion; never edit a step that has shipped.
extern const std::array<std::string_view, kSchemaVersion> kMigrations;

// Brings the open database up to kSchemaVersion in one transaction. A no-op (nothing written)
// when it is already there. Throws StoreError for a schema newer than this binary.
void migrate(sqlite3* db, const std::string& path);

[[noreturn]] void raise_newer_schema(const std::string& path, int64_t version);

}  // namespace v4b::store::detail
