// `v4bench report RUN...`: tables of stored runs rendered from the database alone, the headline
// (V4-Pro and V4-Flash against V3.2 at 1M tokens) when the runs hold it, and SVG charts of KV bytes
// and decode FLOPs against context (log-log, one line per model). Issue 9 grows this into the full
// HTML report and comparison.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "evals/cli/run_views.h"

namespace v4b::cli {

struct ReportCommand {
  CLI::App* app = nullptr;
  std::vector<std::string> runs;
  std::string db = default_db_path(), format = "md", svg_dir, out;
};

std::unique_ptr<ReportCommand> add_report_command(CLI::App& parent);
int run_report_command(const ReportCommand& cmd);

}  // namespace v4b::cli
