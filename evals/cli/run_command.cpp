#include "evals/cli/run_command.h"

#include <unistd.h>

#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "evals/runner/plan.h"
#include "evals/runner/runner.h"

namespace v4b::cli {

namespace {

using nlohmann::json;

// --resume's run: an id, or "last" for the newest run of this suite.
int64_t resume_id(const RunCommand& cmd, const std::string& suite) {
  const auto db = open_existing(cmd.common.db);
  if (cmd.resume != "last") return require_run(*db, cmd.resume).id;
  const auto newest = db->list_runs({suite, "", 1});
  if (newest.empty()) throw UsageError(fmt::format("--resume last: '{}' holds no {} run", cmd.common.db, suite));
  return newest.front().id;
}

// --output-path: each run's results and samples files, named on stderr.
void write_outputs(const RunCommand& cmd, const std::vector<int64_t>& run_ids) {
  if (cmd.output_path.empty()) return;
  store::Store db(cmd.common.db);
  for (int64_t id : run_ids)
    write_run_outputs(db, *db.run(id), cmd.output_path);
}

int run_one_suite(const RunCommand& cmd, const CLI::App& sub, evals::Suite& suite) {
  evals::RunRequest req{cmd.common.db, json(), cmd.common.seed, std::nullopt, cmd.progress};
  if (sub.count("--resume")) req.resume = resume_id(cmd, suite.name());
  else req.params = suite.params();
  const auto outcome = evals::run_suite(suite, req);
  print_run_result(suite, outcome, cmd.common, /*rows_only=*/false);
  write_outputs(cmd, {outcome.run_id});
  return outcome.status == "done" ? 0 : 1;
}

int run_plan_file(const RunCommand& cmd) {
  if (!cmd.app->remaining().empty()) throw UsageError("run --plan takes no suite: the plan names them");
  auto plan = evals::load_plan(cmd.plan, cmd.common.seed);
  const auto outcomes = evals::run_plan(plan, cmd.common.db, cmd.common.seed, cmd.progress);
  std::vector<int64_t> ids;
  for (const auto& o : outcomes) ids.push_back(o.run.run_id);
  write_outputs(cmd, ids);
  bool ok = true;
  json arr = json::array();
  for (const auto& o : outcomes) {
    ok = ok && o.run.status == "done";
    arr.push_back({{"suite", o.suite}, {"run_id", o.run.run_id}, {"status", o.run.status}, {"cases", o.run.planned},
                   {"failed", o.run.failed}, {"wall_s", o.run.wall_s}});
  }
  if (cmd.common.format == "json") fmt::print("{}\n", json{{"plan", plan.name}, {"db", cmd.common.db}, {"runs", arr}}.dump(2));
  else
    for (const auto& o : outcomes) fmt::print("{}\n", summary_line(o.run, o.suite, cmd.common.db));
  return ok ? 0 : 1;
}

}  // namespace

std::unique_ptr<RunCommand> add_run_command(CLI::App& parent) {
  auto cmd = std::make_unique<RunCommand>();
  CLI::App* run = cmd->app = parent.add_subcommand("run", "run a suite and store its results (resumable)");
  run->add_option("--plan", cmd->plan, "run every step of a plan file (plans/ci.json, plans/demo.json) instead of one suite");
  // The same flags on `run` and on each suite, one target: `run --db X kv` and `run kv --db X` agree.
  add_common(*run, cmd->common, /*with_seed=*/true);
  run->add_flag("--progress,!--no-progress", cmd->progress, "one line per step and case on stderr (default: when stderr is a terminal)");
  const char* output_help = "also write each run's results_run<ID>.json and samples_<suite>_run<ID>.jsonl (one line per sample) here";
  run->add_option("--output-path", cmd->output_path, output_help);
  run->require_subcommand(0, 1);
  run->allow_extras();  // so an unknown suite name gets our own message
  run->footer("\nEvery case is committed in its own transaction: a killed run keeps what it finished and\n"
              "`v4bench run SUITE --resume RUN` continues it without repeating a case.\n"
              "`--format json` ends with one JSON object holding run_id, suite and status.");
  for (const auto& e : evals::suite_registry()) {
    auto s = e.make();
    CLI::App* sub = run->add_subcommand(s->name(), s->summary());
    s->add_options(*sub);
    add_common(*sub, cmd->common, /*with_seed=*/true);
    sub->add_option("--resume", cmd->resume, "continue run RUN, or 'last' (the newest run of this suite); its stored parameters are used");
    sub->add_flag("--progress,!--no-progress", cmd->progress, "one line per case on stderr (default: when stderr is a terminal)");
    sub->add_option("--output-path", cmd->output_path, output_help);
    sub->footer("\n" + s->description());
    cmd->suites.emplace_back(sub, std::move(s));
  }
  cmd->progress = isatty(STDERR_FILENO);
  return cmd;
}

int run_run_command(const RunCommand& cmd) {
  for (const auto& [sub, suite] : cmd.suites)
    if (sub->parsed()) return run_one_suite(cmd, *sub, *suite);
  // No suite named: a plan, or a usage error.
  if (!cmd.plan.empty()) return run_plan_file(cmd);
  const auto rest = cmd.app->remaining();
  if (rest.empty()) throw UsageError("run needs a suite, e.g. `v4bench run analyze` (see `v4bench run --help`)");
  evals::make_suite(rest.front());  // names the unknown suite and lists the known ones
  throw UsageError(fmt::format("unexpected argument '{}' for run", rest.front()));
}

}  // namespace v4b::cli
