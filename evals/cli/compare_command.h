// `v4bench compare BASE CAND [--gate FILE]`: the CI regression gate (reports/compare/compare.h).
// Exit 0 pass, 1 regression or runs that are not comparable, 2 usage error.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "evals/cli/run_views.h"

namespace v4b::cli {

struct CompareCommand {
  CLI::App* app = nullptr;
  std::string base, cand, db = default_db_path(), gate, format = "md", out;
  bool allow_mismatch = false;
  uint64_t seed = 0;
};

std::unique_ptr<CompareCommand> add_compare_command(CLI::App& parent);
int run_compare_command(const CompareCommand& cmd);

}  // namespace v4b::cli
