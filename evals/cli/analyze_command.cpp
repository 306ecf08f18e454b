#include "evals/cli/analyze_command.h"

#include <optional>

#include "evals/runner/runner.h"

namespace v4b::cli {

std::unique_ptr<AnalyzeCommand> add_analyze_command(CLI::App& parent) {
  auto cmd = std::make_unique<AnalyzeCommand>();
  cmd->suite = evals::make_suite("analyze");
  CLI::App* a = cmd->app = parent.add_subcommand("analyze", "KV-cache bytes and decode FLOPs per token vs a baseline (analytic)");
  cmd->suite->add_options(*a);
  add_common(*a, cmd->common, /*with_seed=*/true);
  a->footer("\n" + cmd->suite->description() +
            "\n\nStores a run of suite `analyze`; --format json prints one object per (model, ctx).");
  return cmd;
}

int run_analyze_command(const AnalyzeCommand& cmd) {
  const evals::RunRequest req{cmd.common.db, cmd.suite->params(), cmd.common.seed, std::nullopt, false};
  const auto outcome = evals::run_suite(*cmd.suite, req);
  print_run_result(*cmd.suite, outcome, cmd.common, /*rows_only=*/true);
  return outcome.status == "done" ? 0 : 1;
}

}  // namespace v4b::cli
