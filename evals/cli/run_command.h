// `v4bench run SUITE` (every suite a subcommand with its own flags, resumable) and
// `v4bench run --plan FILE` (every step of a plan file).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "evals/cli/cli_util.h"
#include "evals/suites/suite.h"

namespace v4b::cli {

struct RunCommand {
  CLI::App* app = nullptr;
  Common common;  // one target for the flags on `run` and on each suite
  std::string plan;
  std::string resume;  // a run id, or "last": the newest run of the suite
  bool progress = false;
  std::string output_path;  // also write each run's results JSON and samples JSONL here
  std::vector<std::pair<CLI::App*, std::unique_ptr<evals::Suite>>> suites;  // each suite's subcommand
};

std::unique_ptr<RunCommand> add_run_command(CLI::App& parent);
int run_run_command(const RunCommand& cmd);

}  // namespace v4b::cli
