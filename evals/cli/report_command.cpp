#include "evals/cli/report_command.h"

#include <filesystem>
#include <fstream>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/core/errors.h"
#include "engine/core/units.h"
#include "evals/cli/run_views.h"
#include "evals/suites/suite.h"
#include "reports/render/heatmap.h"
#include "reports/render/svg.h"

namespace v4b::cli {

namespace {

using nlohmann::json;
constexpr int64_t k1M = int64_t{1} << 20;

// Rows of the headline: V4 models against the baseline at 1M tokens, from kv (fp8) and flops cases.
render::Table headline(const store::Store& db, const std::vector<store::RunInfo>& runs) {
  std::map<std::string, std::map<std::string, double>> by_model;
  std::string baseline;
  for (const auto& r : runs) {
    if (r.suite != "kv" && r.suite != "flops" && r.suite != "analyze") continue;
    for (const auto& c : db.cases(r.id)) {
      const json row = evals::case_row(c);
      if (row.value("ctx", int64_t{0}) != k1M) continue;
      if (row.contains("kv_format") && row["kv_format"] != "fp8") continue;
      auto& m = by_model[row.value("model", "")];
      baseline = row.value("baseline", baseline);
      if (row.contains("kv_ratio")) m["kv"] = row["kv_ratio"];
      if (row.contains("flops_fp8eq_ratio")) m["fp8eq"] = row["flops_fp8eq_ratio"];  // analyze
      if (row.contains("flops_ratio")) m["fp8eq"] = row["flops_ratio"];              // flops
      if (row.contains("flops_raw_ratio")) m["raw"] = row["flops_raw_ratio"];
    }
  }
  render::Table t;
  t.columns = {{"model", render::Align::kLeft}, {"KV vs " + baseline}, {"FLOPs/token vs " + baseline + " (FP8-eq)"}, {"raw FLOPs"}};
  for (const auto& [model, m] : by_model) {
    auto pct = [&](const char* k) { return m.count(k) ? fmt::format("{:.1f}%", 100 * m.at(k)) : std::string("-"); };
    t.add_row({model, pct("kv"), pct("fp8eq"), pct("raw")});
  }
  return t;
}

void write_chart(const std::string& path, const render::ChartSpec& spec, const std::vector<render::Series>& series) {
  std::ofstream out(path);
  if (!out || !(out << render::line_chart_svg(spec, series))) throw UsageError(fmt::format("cannot write '{}'", path));
  fmt::print(stderr, "wrote {}\n", path);
}

// One series per model (and storage format for KV), context on x.
void write_charts(const store::Store& db, const std::vector<store::RunInfo>& runs, const std::string& dir) {
  std::map<std::string, render::Series> kv, flops;
  for (const auto& r : runs)
    for (const auto& c : db.cases(r.id)) {
      const json row = evals::case_row(c);
      const double ctx = row.value("ctx", 0.0);
      if (r.suite == "kv" || r.suite == "analyze") {
        const std::string name = row.value("model", "") + " " + row.value("kv_format", "");
        kv[name].name = name;
        kv[name].points.push_back({ctx, row.value("kv_bytes", 0.0)});
      }
      if (r.suite == "flops" || r.suite == "analyze") {
        const std::string name = row.value("model", "");
        flops[name].name = name;
        flops[name].points.push_back({ctx, row.value("flops_fp8eq", 0.0)});
      }
    }
  std::filesystem::create_directories(dir);
  auto values = [](const std::map<std::string, render::Series>& m) {
    std::vector<render::Series> v;
    for (const auto& [k, s] : m) v.push_back(s);
    return v;
  };
  if (!kv.empty())
    write_chart(dir + "/kv_vs_ctx.svg", {"KV cache per sequence", "context (tokens)", "bytes"}, values(kv));
  if (!flops.empty())
    write_chart(dir + "/flops_vs_ctx.svg", {"Decode FLOPs per token (FP8-equivalent)", "context (tokens)", "FLOPs"}, values(flops));
}

// Recall runs: NIAH accuracy by needle depth (rows) and context (columns), one map per attention
// mode, and native minus dense from the paired cases.
void write_recall_heatmaps(const store::Store& db, const std::vector<store::RunInfo>& runs, const std::string& dir) {
  for (const auto& r : runs) {
    if (r.suite != "recall") continue;
    std::map<std::string, std::map<std::pair<double, int64_t>, double>> by_mode;
    std::set<double> depths;
    std::set<int64_t> ctxs;
    for (const auto& c : db.cases(r.id)) {
      const json row = evals::case_row(c);
      if (row.value("task", "") != "niah" || !row.contains("depth") || !row["depth"].is_number()) continue;
      const std::string att = row.value("attention", "");
      const char* metric = att == "native-dense" ? "accuracy_diff" : "accuracy";
      if (!row.contains(metric)) continue;
      const double depth = row["depth"];
      const int64_t ctx = row.value("ctx", int64_t{0});
      depths.insert(depth), ctxs.insert(ctx);
      by_mode[att][{depth, ctx}] = row[metric];
    }
    if (by_mode.empty()) continue;
    std::vector<std::string> cols, rows;
    for (int64_t c : ctxs) cols.push_back(format_size(c));
    for (double d : depths) rows.push_back(fmt::format("{:g}%", d));
    std::filesystem::create_directories(dir);
    for (const auto& [att, cells] : by_mode) {
      std::vector<std::vector<double>> values;
      for (double d : depths) {
        values.emplace_back();
        for (int64_t c : ctxs) values.back().push_back(cells.count({d, c}) ? cells.at({d, c}) : std::nan(""));
      }
      const bool diff = att == "native-dense";
      render::HeatmapSpec spec{diff ? fmt::format("Run {}: NIAH accuracy, native minus dense (points)", r.id)
                                    : fmt::format("Run {}: NIAH accuracy (%), {} attention", r.id, att),
                               "context (tokens)", "needle depth", diff ? -100.0 : 0.0, 100, diff, diff ? "{:+.0f}" : "{:.0f}"};
      const std::string path = fmt::format("{}/recall_{}_{}.svg", dir, r.id, diff ? "native_minus_dense" : att);
      std::ofstream out(path);
      if (!out || !(out << render::heatmap_svg(spec, cols, rows, values))) throw UsageError(fmt::format("cannot write '{}'", path));
      fmt::print(stderr, "wrote {}\n", path);
    }
  }
}

}  // namespace

std::unique_ptr<ReportCommand> add_report_command(CLI::App& parent) {
  auto cmd = std::make_unique<ReportCommand>();
  cmd->app = parent.add_subcommand("report", "render stored runs: tables, the 1M-token headline, SVG charts");
  cmd->app->add_option("runs", cmd->runs, "run ids ('last' for the newest)")->required();
  cmd->app->add_option("--db", cmd->db, "results database")->envname("V4BENCH_DB")->capture_default_str();
  cmd->app->add_option("--format", cmd->format, "md or json")->check(CLI::IsMember({"md", "json"}))->capture_default_str();
  cmd->app->add_option("--svg-dir", cmd->svg_dir, "also write kv_vs_ctx.svg and flops_vs_ctx.svg (log-log), and recall_RUN_MODE.svg depth x length heatmaps, here");
  cmd->app->footer(
      "\nRendered from the database alone. The headline table (V4 models against the baseline at 1M\n"
      "tokens: KV with FP8 storage, FLOPs FP8-equivalent and raw) appears when the runs hold 1M cases.");
  return cmd;
}

int run_report_command(const ReportCommand& cmd) {
  if (!std::filesystem::exists(cmd.db)) throw UsageError(fmt::format("no results database at '{}'", cmd.db));
  store::Store db(cmd.db);
  std::vector<store::RunInfo> runs;
  for (const auto& id : cmd.runs) runs.push_back(require_run(db, id));
  if (cmd.format == "json") {
    json out = {{"runs", json::array()}};
    for (const auto& r : runs) out["runs"].push_back(run_with_cases_json(db, r));
    fmt::print("{}\n", out.dump(2));
  } else {
    const render::Table head = headline(db, runs);
    if (!head.rows.empty()) fmt::print("## Headline at 1M tokens\n\n{}\n", render_table(head, "md"));
    for (const auto& r : runs) {
      fmt::print("## Run {} — {} ({})\n\nmodel {}, engine {}, {} on {}\n\n", r.id, r.suite, r.status, r.model, r.engine_commit,
                 r.created_at, r.host.value("cpu", "?"));
      fmt::print("{}\n", render_table(run_table(db, r), "md"));
    }
  }
  if (!cmd.svg_dir.empty()) {
    write_charts(db, runs, cmd.svg_dir);
    write_recall_heatmaps(db, runs, cmd.svg_dir);
  }
  return 0;
}

}  // namespace v4b::cli
