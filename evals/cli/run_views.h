// Views of stored runs shared by the CLI commands (runs show/export, report): JSON records,
// the suite's own table, the long one-row-per-metric table.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/render/table.h"
#include "reports/store/store.h"

namespace v4b::cli {

// --db's default: $V4BENCH_DB when set, else runs/v4bench.db. Read once here rather than through
// CLI11's envname, which would let the variable override an explicit --db when several
// subcommands share one option variable.
std::string default_db_path();
std::string render_table(const render::Table& t, const std::string& format);  // table | md | csv
nlohmann::json run_json(const store::RunInfo& r);
nlohmann::json run_with_cases_json(const store::Store& db, const store::RunInfo& r);
render::Table long_table(const store::Store& db, const std::vector<store::RunInfo>& runs);
// The run's cases in its suite's view (reports/render/views).
render::Table run_table(const store::Store& db, const store::RunInfo& r);
// Every sample of a run, one JSON object per line (its suite view's sample_row, with run_id and suite).
std::string samples_jsonl(const store::Store& db, const store::RunInfo& r);
// Writes `text` to `path` (its directory created when missing) through a temporary file renamed
// into place, then says "wrote PATH" on stderr; UsageError naming the path when it cannot.
void write_file(const std::string& path, const std::string& text);
// lm-evaluation-harness's layout for a stored run under `dir`: results_run<ID>.json (the run and
// every case's metrics, as `runs export` writes it) and samples_<suite>_run<ID>.jsonl.
void write_run_outputs(const store::Store& db, const store::RunInfo& r, const std::string& dir);
// Opens a results database that must already exist (reading commands never create one).
std::unique_ptr<store::Store> open_existing(const std::string& path);
// A run id, or "last" for the newest run; UsageError when it is not there.
store::RunInfo require_run(const store::Store& db, const std::string& text);

}  // namespace v4b::cli
