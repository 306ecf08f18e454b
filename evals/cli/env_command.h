// `v4bench env` (this machine's context as recorded with every run, and the measured ceilings) and
// `v4bench version`.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "evals/cli/cli_util.h"

namespace v4b::cli {

struct EnvCommand {
  CLI::App* app = nullptr;
  Common common;
  bool probe = false;
};

std::unique_ptr<EnvCommand> add_env_command(CLI::App& parent);
int run_env_command(const EnvCommand& cmd);

struct VersionCommand {
  CLI::App* app = nullptr;
};

std::unique_ptr<VersionCommand> add_version_command(CLI::App& parent);
int run_version_command(const VersionCommand& cmd);

// "v4bench VERSION (commit C, BUILD_TYPE)": what `version` and `--version` print.
std::string version_line();

}  // namespace v4b::cli
