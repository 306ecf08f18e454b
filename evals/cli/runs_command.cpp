#include "evals/cli/runs_command.h"

#include <cstdio>
#include <ranges>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "evals/cli/run_views.h"
#include "reports/render/table.h"
#include "reports/render/views/report.h"

namespace v4b::cli {

namespace {

using nlohmann::json;

// Runs named by id, or (with no ids) those the filter selects; UsageError when nothing matches.
std::vector<store::RunInfo> select_runs(const store::Store& db, const std::vector<std::string>& ids, const store::RunFilter& filter) {
  std::vector<store::RunInfo> list;
  for (const auto& id : ids) list.push_back(require_run(db, id));
  if (ids.empty()) list = db.list_runs(filter);
  if (list.empty()) throw UsageError("no run matches the filters (see `v4bench runs list`)");
  return list;
}

void write_output(const std::string& text, const std::string& out) {
  if (out.empty()) fmt::print("{}", text);
  else write_file(out, text);
}

int list_runs(const RunsCommand& cmd) {
  auto db = open_existing(cmd.common.db);
  const auto list = db->list_runs(cmd.filter);
  if (cmd.common.format == "json") {
    json arr = json::array();
    for (const auto& r : list) arr.push_back(run_json(r));
    fmt::print("{}\n", arr.dump(2));
    return 0;
  }
  render::Table t;
  t.columns = {{"id"}, {"suite", render::Align::kLeft}, {"model", render::Align::kLeft}, {"status", render::Align::kLeft},
               {"cases"}, {"created", render::Align::kLeft}, {"commit", render::Align::kLeft}};
  for (const auto& r : list)
    t.add_row({std::to_string(r.id), r.suite, r.model, r.status, std::to_string(r.n_cases), r.created_at, r.engine_commit});
  fmt::print("{}", render_table(t, cmd.common.format));
  return 0;
}

int show_run(const RunsCommand& cmd) {
  auto db = open_existing(cmd.common.db);
  const auto r = require_run(*db, cmd.show_id);
  if (cmd.common.format == "json") {
    fmt::print("{}\n", run_with_cases_json(*db, r).dump(2));
  } else if (cmd.common.format == "csv") {
    fmt::print("{}", render::to_csv(long_table(*db, {r})));
  } else {
    const bool md = cmd.common.format == "md";
    fmt::print("{}run {} — suite {}, model {}, status {}\n", md ? "### " : "", r.id, r.suite, r.model, r.status);
    fmt::print("{}created {}, finished {}, engine {}, seed {}\n", md ? "\n" : "", r.created_at,
               r.finished_at.empty() ? "-" : r.finished_at, r.engine_commit, r.seed);
    if (const std::string n = views::numerics_summary(r.params); !n.empty()) fmt::print("{}numerics {}\n", md ? "\n" : "", n);
    fmt::print("{}params {}\n{}host {} ({} cores), {}\n\n", md ? "\n" : "", r.params.dump(), md ? "\n" : "",
               r.host.value("cpu", "?"), r.host.value("logical_cores", 0), r.host.value("os", "?"));
    fmt::print("{}", render_table(run_table(*db, r), cmd.common.format));
  }
  return 0;
}

int export_runs(const RunsCommand& cmd) {
  auto db = open_existing(cmd.common.db);
  const auto list = select_runs(*db, cmd.export_ids, cmd.filter);
  if (!cmd.output_path.empty()) {
    for (const auto& r : list) write_run_outputs(*db, r, cmd.output_path);
    return 0;
  }
  if (cmd.samples) {
    std::string text;
    for (const auto& r : list) text += samples_jsonl(*db, r);
    write_output(text, cmd.out);
    return 0;
  }
  // json unless --format says otherwise: the shared default (table) is not an export format.
  const std::string format = cmd.export_->count("--format") ? cmd.common.format : "json";
  if (format == "csv") {
    write_output(render::to_csv(long_table(*db, list)), cmd.out);
  } else if (format == "json") {
    json arr = json::array();
    for (const auto& r : list) arr.push_back(run_with_cases_json(*db, r));
    write_output(arr.dump(2) + "\n", cmd.out);
  } else {
    throw UsageError("runs export writes --format json or csv");
  }
  return 0;
}

int delete_runs(const RunsCommand& cmd) {
  const store::RunFilter& f = cmd.filter;
  if (cmd.delete_ids.empty() && f.suite.empty() && f.model.empty() && f.since.empty() && f.until.empty())
    throw UsageError("runs delete needs run ids or a filter (--suite, --model, --since, --until)");
  auto db = open_existing(cmd.common.db);
  const auto list = select_runs(*db, cmd.delete_ids, f);
  for (const auto& r : list) db->delete_run(r.id);
  fmt::print("deleted {} run{}{}{}\n", list.size(), list.size() == 1 ? "" : "s", list.empty() ? "" : ": ",
             fmt::join(list | std::views::transform([](const store::RunInfo& r) { return r.id; }), ", "));
  return 0;
}

}  // namespace

std::unique_ptr<RunsCommand> add_runs_command(CLI::App& parent) {
  auto cmd = std::make_unique<RunsCommand>();
  CLI::App* runs = cmd->app = parent.add_subcommand("runs", "list, show and export stored runs");
  runs->require_subcommand(1);
  // The same selection flags on list, export and delete.
  store::RunFilter& filter = cmd->filter;
  const auto add_filters = [&filter](CLI::App* sub) {
    sub->add_option("--suite", filter.suite, "only runs of this suite");
    sub->add_option("--model", filter.model, "only runs whose model label contains this text");
    sub->add_option("--since", filter.since, "only runs created on or after this date (2026-11-28 or 2026-11-28T12:00)");
    sub->add_option("--until", filter.until, "only runs created on or before this date (a date includes the whole day)");
  };
  CLI::App* list = cmd->list = runs->add_subcommand("list", "list runs, newest first");
  add_filters(list);
  list->add_option("--limit", filter.limit, "at most this many runs")->check(CLI::NonNegativeNumber);
  add_common(*list, cmd->common);
  CLI::App* show = cmd->show = runs->add_subcommand("show", "one run: parameters, host context and every case's metrics");
  show->add_option("run", cmd->show_id, "run id, or 'last'")->required();
  add_common(*show, cmd->common);
  CLI::App* exp = cmd->export_ = runs->add_subcommand("export", "export runs as JSON (full records; the default) or CSV (one row per metric)");
  exp->add_option("runs", cmd->export_ids, "run ids ('last' for the newest); without ids, the runs the filters select");
  add_filters(exp);
  exp->add_option("--out,-o", cmd->out, "write to this file instead of stdout");
  auto* samples = exp->add_flag("--samples", cmd->samples, "write every sample instead, one JSON object per line (JSONL)");
  exp->add_option("--output-path", cmd->output_path,
                  "write each run's results_run<ID>.json and samples_<suite>_run<ID>.jsonl into this directory")
      ->excludes(samples);
  add_common(*exp, cmd->common);
  CLI::App* del = cmd->delete_ = runs->add_subcommand("delete", "delete runs with all their cases, metrics, samples and artifacts");
  del->add_option("runs", cmd->delete_ids, "run ids ('last' for the newest); without ids, the runs the filters select");
  add_filters(del);
  add_common(*del, cmd->common);
  del->footer("\nWithout run ids at least one filter is needed, so a bare `runs delete` never empties the database.");
  return cmd;
}

int run_runs_command(const RunsCommand& cmd) {
  if (cmd.list->parsed()) return list_runs(cmd);
  if (cmd.show->parsed()) return show_run(cmd);
  if (cmd.export_->parsed()) return export_runs(cmd);
  return delete_runs(cmd);  // require_subcommand(1): delete is the one left
}

}  // namespace v4b::cli
