// `v4bench runs list|show|export|delete`: browse, export and delete what the database holds.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "evals/cli/cli_util.h"
#include "reports/store/store.h"

namespace v4b::cli {

struct RunsCommand {
  CLI::App* app = nullptr;
  CLI::App *list = nullptr, *show = nullptr, *export_ = nullptr, *delete_ = nullptr;
  Common common;
  store::RunFilter filter;  // list, export and delete select with the same flags
  std::string show_id, out;
  bool samples = false;       // export: the per-sample JSONL instead of the runs
  std::string output_path;    // export: results and samples files per run into this directory
  std::vector<std::string> export_ids, delete_ids;
};

std::unique_ptr<RunsCommand> add_runs_command(CLI::App& parent);
int run_runs_command(const RunsCommand& cmd);

}  // namespace v4b::cli
