#include "evals/cli/compare_command.h"

#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "evals/cli/run_views.h"
#include "reports/compare/compare.h"

namespace v4b::cli {

namespace {

// "12", "last", or "path/to/other.db:12" (a run in another database, e.g. a stored baseline).
compare::LoadedRun load_run(const std::string& ref, const std::string& default_db) {
  std::string db_path = default_db, id = ref;
  if (const auto colon = ref.rfind(':'); colon != std::string::npos) {
    db_path = ref.substr(0, colon);
    id = ref.substr(colon + 1);
  }
  const auto db = open_existing(db_path);
  compare::LoadedRun r;
  r.info = require_run(*db, id);
  r.label = fmt::format("{}:{}", db_path, r.info.id);
  r.cases = db->cases(r.info.id);
  return r;
}

}  // namespace

std::unique_ptr<CompareCommand> add_compare_command(CLI::App& parent) {
  auto cmd = std::make_unique<CompareCommand>();
  CLI::App* a = cmd->app = parent.add_subcommand("compare", "compare two stored runs; with --gate, fail on a significant regression");
  a->add_option("base", cmd->base, "base run: id, 'last', or DB:ID for a run in another database")->required();
  a->add_option("cand", cmd->cand, "candidate run: id, 'last', or DB:ID")->required();
  a->add_option("--db", cmd->db, "results database for plain ids")->capture_default_str();
  a->add_option("--gate", cmd->gate, "gate file (JSON): the metrics that can fail, tolerances and tests");
  a->add_flag("--allow-mismatch", cmd->allow_mismatch, "judge runs whose model or parameters differ instead of refusing");
  a->add_option("--format", cmd->format, "output format")->check(CLI::IsMember({"md", "json"}))->capture_default_str();
  a->add_option("--out,-o", cmd->out, "also write the summary to this file (e.g. for a CI comment)");
  a->add_option("--seed", cmd->seed, "bootstrap seed")->capture_default_str();
  a->footer(R"(
Matches the two runs case by case and reports every metric's mean delta. A gate file decides:
  {"rules": [{"metric": "accuracy", "suite": "recall", "direction": "higher",
              "abs_tol": 0.02, "rel_tol": 0, "min_effect": 0.05,
              "test": "mcnemar", "sample_field": "correct", "pair_by": "id",
              "group_by": ["depth"], "alpha": 0.05}]}
A rule fails when the metric (averaged over each group's cases) moves in the worse direction by more
than max(abs_tol, rel_tol x |base|, min_effect) AND its test finds the change significant (p < alpha):
  mcnemar       exact McNemar on paired per-sample correctness (sample_field truthy = right)
  bootstrap     paired bootstrap (2000 resamples, seeded) of the per-sample difference
  mann_whitney  Mann-Whitney U on unpaired samples (timings over repetitions)
  none          the tolerance alone
A group's metric is the mean over its cases that have it; its samples come from all its cases.
group_by ["*"] makes one group of every case (e.g. pass@k kept in a summary case, samples in chunks).
Samples pair by the sample detail named by pair_by (default: the sample index) within a case.
Runs of different suites are a usage error; a different model or parameters (other than the seed), or
cases in one run only, make them NOT COMPARABLE (exit 1) unless --allow-mismatch.
Exit: 0 pass, 1 regression or not comparable, 2 usage error. plans/ci-gate.json is the shipped gate.)");
  return cmd;
}

int run_compare_command(const CompareCommand& cmd) {
  std::vector<compare::GateRule> rules;
  if (!cmd.gate.empty()) {
    std::ifstream in(cmd.gate);
    if (!in) throw UsageError(fmt::format("cannot read gate file '{}'", cmd.gate));
    const nlohmann::json g = nlohmann::json::parse(in, nullptr, false);
    if (g.is_discarded()) throw UsageError(fmt::format("gate file '{}' is not valid JSON", cmd.gate));
    rules = compare::parse_gate(g);
  }
  const compare::LoadedRun base = load_run(cmd.base, cmd.db), cand = load_run(cmd.cand, cmd.db);
  const compare::Comparison c = compare::compare_runs(base, cand, rules, cmd.seed);
  const std::string text = cmd.format == "json" ? compare::to_json(c, base, cand).dump(2) + "\n" : compare::markdown(c, base, cand, cmd.allow_mismatch);
  fmt::print("{}", text);
  if (!cmd.out.empty()) {
    std::ofstream f(cmd.out);
    if (!f || !(f << text)) throw UsageError(fmt::format("cannot write '{}'", cmd.out));
  }
  const bool comparable = c.mismatches.empty() || cmd.allow_mismatch;
  return comparable && !c.regressed() ? 0 : 1;
}

}  // namespace v4b::cli
