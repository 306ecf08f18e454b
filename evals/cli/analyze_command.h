// `v4bench analyze`: the analytic KV-cache and decode-FLOPs projection, stored as a run of suite
// `analyze` and printed as a table or a JSON array of rows.
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

#include "evals/cli/cli_util.h"
#include "evals/suites/suite.h"

namespace v4b::cli {

struct AnalyzeCommand {
  CLI::App* app = nullptr;
  std::unique_ptr<evals::Suite> suite;  // holds the suite's own flags
  Common common;
};

std::unique_ptr<AnalyzeCommand> add_analyze_command(CLI::App& parent);
int run_analyze_command(const AnalyzeCommand& cmd);

}  // namespace v4b::cli
