// What several `v4bench` commands share: the flags of the commands that store or read runs, the
// printing of a finished run, the parsing of token-id lists and the names of the synthetic presets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "evals/cli/run_views.h"
#include "evals/runner/runner.h"
#include "evals/suites/suite.h"

namespace v4b::cli {

// Flags every subcommand takes.
struct Common {
  std::string db = default_db_path();
  std::string format = "table";
  uint64_t seed = 0;
};

void add_common(CLI::App& cmd, Common& c, bool with_seed = false);

// One line per stored run: its id, status, case counts, time and database.
std::string summary_line(const evals::RunOutcome& o, const std::string& suite, const std::string& db);

// The run's table (or JSON) and its summary line; with rows_only, JSON is the array of rows alone.
void print_run_result(evals::Suite& suite, const evals::RunOutcome& o, const Common& c, bool rows_only);

// "19923,14,2058,3" (optionally in brackets, spaces allowed) as ids; range is checked by decode.
// `flag` names the option in errors.
std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag);

// The presets `synth` writes and --model accepts, comma-separated.
std::string synthetic_presets();

}  // namespace v4b::cli
