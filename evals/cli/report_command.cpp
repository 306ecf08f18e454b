#include "evals/cli/report_command.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "evals/cli/run_views.h"
#include "reports/render/views/report.h"

namespace v4b::cli {

using nlohmann::json;

std::unique_ptr<ReportCommand> add_report_command(CLI::App& parent) {
  auto cmd = std::make_unique<ReportCommand>();
  cmd->app = parent.add_subcommand("report", "render stored runs: tables, the 1M-token headline, SVG charts");
  cmd->app->add_option("runs", cmd->runs, "run ids ('last' for the newest)")->required();
  cmd->app->add_option("--db", cmd->db, "results database")->capture_default_str();
  cmd->app->add_option("--format", cmd->format, "md, html, json or csv")->check(CLI::IsMember({"md", "html", "json", "csv"}))->capture_default_str();
  cmd->app->add_option("--out,-o", cmd->out, "write the report to this file (required for html)");
  cmd->app->add_option("--svg-dir", cmd->svg_dir, "also write the report's figures as SVG files here (kv_vs_ctx.svg, flops_vs_ctx.svg, ...)");
  cmd->app->footer(
      "\nRendered from the database alone. md fits a CI comment (figures are linked by file name: write\n"
      "them beside it with --svg-dir); html is one self-contained file (inline SVG and CSS, no scripts,\n"
      "nothing fetched) with each run's metadata and host context, tables and charts; json holds the\n"
      "full records, csv one row per metric. The headline table (V4 models against the baseline at 1M\n"
      "tokens: KV with FP8 storage, FLOPs FP8-equivalent and raw) appears when the runs hold 1M cases.");
  return cmd;
}

int run_report_command(const ReportCommand& cmd) {
  if (cmd.format == "html" && cmd.out.empty()) throw UsageError("--format html needs --out FILE.html");
  const auto db_ptr = open_existing(cmd.db);
  const store::Store& db = *db_ptr;
  std::vector<store::RunInfo> runs;
  std::vector<views::StoredRun> stored;
  for (const auto& id : cmd.runs) {
    runs.push_back(require_run(db, id));
    stored.push_back({runs.back(), db.cases(runs.back().id)});
  }
  const render::Document doc = views::build_report(stored);
  std::string text;
  if (cmd.format == "json") {
    json out = {{"runs", json::array()}};
    for (const auto& r : runs) out["runs"].push_back(run_with_cases_json(db, r));
    text = out.dump(2) + "\n";
  } else if (cmd.format == "csv") {
    text = render::to_csv(long_table(db, runs));
  } else {
    text = cmd.format == "html" ? render::to_html(doc) : render::to_markdown(doc);
  }
  if (cmd.out.empty()) fmt::print("{}", text);
  else write_file(cmd.out, text);
  if (!cmd.svg_dir.empty())
    for (const auto& s : doc.sections)
      for (const auto& f : s.figures) write_file(cmd.svg_dir + "/" + f.file_name, f.svg);
  return 0;
}

}  // namespace v4b::cli
