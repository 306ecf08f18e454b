#include "evals/cli/kld_command.h"

#include <cstdint>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "evals/cli/run_views.h"
#include "evals/runner/runner.h"
#include "reports/render/table.h"
#include "reports/store/store.h"

namespace v4b::cli {

namespace {

using nlohmann::json;

// The per-bin drift of each case of a kld run (its samples).
void print_kld_bins(const std::string& db_path, int64_t run_id) {
  store::Store db(db_path);
  for (const auto& c : db.cases(run_id)) {
    render::Table t;
    t.columns = {{"positions", render::Align::kLeft}, {"count"}, {"KL mean"}, {"top-1 agree"}, {"Δp mean"}};
    for (const auto& smp : c.samples) {
      const json& d = smp.details;
      t.add_row({fmt::format("{}-{}", d.value("first", 0), d.value("last", 0)), std::to_string(d.value("count", 0)),
                 fmt::format("{:.4g}", d.value("kld_mean", 0.0)), fmt::format("{:.2f}%", 100 * d.value("top1_agreement", 0.0)),
                 fmt::format("{:+.4f}", d.value("dp_mean", 0.0))});
    }
    fmt::print("\n{}:\n{}", c.key, render_table(t, "table"));
  }
}

}  // namespace

std::unique_ptr<KldCommand> add_kld_command(CLI::App& parent) {
  auto cmd = std::make_unique<KldCommand>();
  cmd->suite = evals::make_suite("kld");
  CLI::App* a = cmd->app =
      parent.add_subcommand("kld", "KL divergence, top-1 agreement and Δp of a candidate's logits against a base");
  cmd->suite->add_options(*a);
  add_common(*a, cmd->common, /*with_seed=*/true);
  a->footer("\n" + cmd->suite->description() +
            "\n\nStores a run of suite `kld` (as `v4bench run kld` does) and prints its table, then the KL and\n"
            "agreement per position bin so drift with context is visible.");
  return cmd;
}

int run_kld_command(const KldCommand& cmd) {
  const evals::RunRequest req{cmd.common.db, cmd.suite->params(), cmd.common.seed, std::nullopt, false};
  const auto outcome = evals::run_suite(*cmd.suite, req);
  print_run_result(*cmd.suite, outcome, cmd.common, /*rows_only=*/false);
  if (cmd.common.format == "table") print_kld_bins(cmd.common.db, outcome.run_id);
  return outcome.status == "done" ? 0 : 1;
}

}  // namespace v4b::cli
