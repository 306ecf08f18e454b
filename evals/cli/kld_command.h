// `v4bench kld`: logit fidelity of a candidate against a base (KL divergence, top-1 agreement, Δp),
// stored as a run of suite `kld` and printed with its drift per position bin.
#pragma once

#include <memory>

#include <CLI/CLI.hpp>

#include "evals/cli/cli_util.h"
#include "evals/suites/suite.h"

namespace v4b::cli {

struct KldCommand {
  CLI::App* app = nullptr;
  std::unique_ptr<evals::Suite> suite;  // holds the suite's own flags
  Common common;
};

std::unique_ptr<KldCommand> add_kld_command(CLI::App& parent);
int run_kld_command(const KldCommand& cmd);

}  // namespace v4b::cli
