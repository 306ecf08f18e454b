#include "evals/cli/report_command.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "common/units.h"
#include "evals/cli/run_views.h"
#include "evals/suites/numerics.h"
#include "evals/suites/suite.h"
#include "reports/render/document.h"
#include "reports/render/heatmap.h"
#include "reports/render/svg.h"

namespace v4b::cli {

namespace {

using nlohmann::json;

// A run with its cases, read from the database once for every part of the report.
struct StoredRun {
  store::RunInfo info;
  std::vector<store::CaseRecord> cases;
};
constexpr int64_t k1M = int64_t{1} << 20;

// Rows of the headline: V4 models against the baseline at 1M tokens, from kv (fp8) and flops cases.
render::Table headline(const std::vector<StoredRun>& runs) {
  std::map<std::string, std::map<std::string, double>> by_model;
  std::string baseline;
  for (const auto& [r, cases] : runs) {
    if (r.suite != "kv" && r.suite != "flops" && r.suite != "analyze") continue;
    for (const auto& c : cases) {
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

// KV bytes and decode FLOPs against context: one series per model (and storage format for KV).
std::vector<render::Figure> context_charts(const std::vector<StoredRun>& runs) {
  std::map<std::string, render::Series> kv, flops;
  for (const auto& [r, cases] : runs)
    for (const auto& c : cases) {
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
  auto values = [](const std::map<std::string, render::Series>& m) {
    std::vector<render::Series> v;
    for (const auto& [k, s] : m) v.push_back(s);
    return v;
  };
  std::vector<render::Figure> figs;
  if (!kv.empty())
    figs.push_back({"KV cache bytes per sequence against context (log-log)", "kv_vs_ctx.svg",
                    render::line_chart_svg({"KV cache per sequence", "context (tokens)", "bytes"}, values(kv))});
  if (!flops.empty())
    figs.push_back({"Decode FLOPs per token against context, FP8-equivalent (log-log)", "flops_vs_ctx.svg",
                    render::line_chart_svg({"Decode FLOPs per token (FP8-equivalent)", "context (tokens)", "FLOPs"}, values(flops))});
  return figs;
}

std::string ceilings_fact(const json& host) {
  const json c = host.value("ceilings", json::object());
  if (!c.is_object() || c.empty()) return "not probed (v4bench env --probe)";
  return fmt::format("DRAM {:.1f} GB/s, cache {:.1f} GB/s, FMA {:.0f} GFLOP/s", c.value("read_gbps_dram", 0.0), c.value("read_gbps_cache", 0.0),
                     c.value("fma_gflops", 0.0));
}

// Recall runs: NIAH accuracy by needle depth (rows) and context (columns), one map per attention
// mode, and native minus dense from the paired cases.
std::vector<render::Figure> recall_heatmaps(const std::vector<StoredRun>& runs) {
  std::vector<render::Figure> figs;
  for (const auto& [r, cases] : runs) {
    if (r.suite != "recall") continue;
    std::map<std::string, std::map<std::pair<double, int64_t>, double>> by_mode;
    std::set<double> depths;
    std::set<int64_t> ctxs;
    for (const auto& c : cases) {
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
      figs.push_back({spec.title, fmt::format("recall_{}_{}.svg", r.id, diff ? "native_minus_dense" : att),
                      render::heatmap_svg(spec, cols, rows, values)});
    }
  }
  return figs;
}

// Everything the report shows, in order: headline, each run (metadata, host, table), charts.
render::Document build_report(const std::vector<StoredRun>& runs) {
  render::Document doc;
  std::string ids;
  for (const auto& [r, cases] : runs) ids += (ids.empty() ? "" : ", ") + std::to_string(r.id);
  doc.title = fmt::format("v4bench report — run{} {}", runs.size() == 1 ? "" : "s", ids);
  const render::Table head = headline(runs);
  if (!head.rows.empty()) {
    render::Section s{"Headline at 1M tokens", {}, {}, {head}, {}};
    s.paragraphs.push_back("V4 models against the baseline at 1M tokens: KV with FP8 storage, decode FLOPs per token FP8-equivalent and raw.");
    doc.sections.push_back(std::move(s));
  }
  for (const auto& [r, cases] : runs) {
    render::Section s;
    s.title = fmt::format("Run {} — {} ({})", r.id, r.suite, r.status);
    s.facts = {{"model", r.model},
               {"created", r.created_at},
               {"finished", r.finished_at.empty() ? "-" : r.finished_at},
               {"engine", r.engine_commit},
               {"seed", std::to_string(r.seed)},
               {"parameters", r.params.dump()},
               {"host", fmt::format("{} ({} cores), {}", r.host.value("cpu", "?"), r.host.value("logical_cores", 0), r.host.value("os", "?"))},
               {"ceilings", ceilings_fact(r.host)}};
    // The engine's arithmetic beside the parameters, for the runs that have one.
    if (const std::string n = evals::numerics_summary(r.params); !n.empty()) {
      const auto at = std::find_if(s.facts.begin(), s.facts.end(), [](const auto& f) { return f.first == "parameters"; });
      s.facts.insert(at, {"numerics", n});
    }
    s.tables.push_back(suite_table(r.suite, cases));
    doc.sections.push_back(std::move(s));
  }
  auto charts = context_charts(runs);
  if (!charts.empty()) doc.sections.push_back({"KV cache and FLOPs against context", {}, {}, {}, std::move(charts)});
  auto heatmaps = recall_heatmaps(runs);
  if (!heatmaps.empty())
    doc.sections.push_back({"Recall: NIAH accuracy by needle depth and context", {}, {}, {}, std::move(heatmaps)});
  return doc;
}

void write_file(const std::string& path, const std::string& text) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(path, std::ios::binary);
  if (!out || !(out << text)) throw UsageError(fmt::format("cannot write '{}'", path));
}


}  // namespace

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
  std::vector<StoredRun> stored;
  for (const auto& id : cmd.runs) {
    runs.push_back(require_run(db, id));
    stored.push_back({runs.back(), db.cases(runs.back().id)});
  }
  const render::Document doc = build_report(stored);
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
  else write_file(cmd.out, text), fmt::print(stderr, "wrote {}\n", cmd.out);
  if (!cmd.svg_dir.empty())
    for (const auto& s : doc.sections)
      for (const auto& f : s.figures) {
        write_file(cmd.svg_dir + "/" + f.file_name, f.svg);
        fmt::print(stderr, "wrote {}/{}\n", cmd.svg_dir, f.file_name);
      }
  return 0;
}

}  // namespace v4b::cli
