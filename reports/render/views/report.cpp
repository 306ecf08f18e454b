#include "reports/render/views/report.h"

#include <algorithm>

#include <fmt/format.h>

namespace v4b::views {
namespace {

using nlohmann::json;

render::Table headline(const ContextCurves& curves) {
  render::Table t;
  const std::string& b = curves.baseline;
  t.columns = {{"model", render::Align::kLeft}, {"KV vs " + b}, {"FLOPs/token vs " + b + " (FP8-eq)"}, {"raw FLOPs"}};
  auto pct = [](const std::optional<double>& v) { return v ? fmt::format("{:.1f}%", 100 * *v) : std::string("-"); };
  for (const auto& [model, at] : curves.at_1m) t.add_row({model, pct(at.kv_ratio), pct(at.fp8eq_ratio), pct(at.raw_ratio)});
  return t;
}

std::vector<render::Figure> context_charts(const ContextCurves& curves) {
  auto values = [](const std::map<std::string, render::Series>& m) {
    std::vector<render::Series> v;
    for (const auto& [k, s] : m) v.push_back(s);
    return v;
  };
  std::vector<render::Figure> figs;
  if (!curves.kv_bytes.empty())
    figs.push_back({"KV cache bytes per sequence against context (log-log)", "kv_vs_ctx.svg",
                    render::line_chart_svg({"KV cache per sequence", "context (tokens)", "bytes"}, values(curves.kv_bytes))});
  if (!curves.flops_fp8eq.empty())
    figs.push_back({"Decode FLOPs per token against context, FP8-equivalent (log-log)", "flops_vs_ctx.svg",
                    render::line_chart_svg({"Decode FLOPs per token (FP8-equivalent)", "context (tokens)", "FLOPs"},
                                           values(curves.flops_fp8eq))});
  return figs;
}

std::string ceilings_fact(const json& host) {
  const json c = host.is_object() ? host.value("ceilings", json::object()) : json::object();
  if (!c.is_object() || c.empty()) return "not probed (v4bench env --probe)";
  return fmt::format("DRAM {:.1f} GB/s, cache {:.1f} GB/s, FMA {:.0f} GFLOP/s", c.value("read_gbps_dram", 0.0),
                     c.value("read_gbps_cache", 0.0), c.value("fma_gflops", 0.0));
}

// Parameters as "key: value" items joined by "; " (lists comma-separated), which wrap between items
// rather than inside a JSON token.
std::string readable(const json& params) {
  if (!params.is_object()) return params.dump();
  std::string out;
  for (const auto& [k, v] : params.items()) {
    std::string text;
    if (v.is_string()) text = v.get<std::string>();
    else if (v.is_array()) {
      for (const auto& x : v) text += (text.empty() ? "" : ",") + (x.is_string() ? x.get<std::string>() : x.dump());
      if (v.empty()) text = "[]";
    } else text = v.dump();
    out += (out.empty() ? "" : "; ") + k + ": " + text;
  }
  return out;
}

// One line per run: what it was and how it ended.
render::Table runs_table(const std::vector<StoredRun>& runs) {
  render::Table t;
  t.columns = {{"run"}, {"suite", render::Align::kLeft}, {"model", render::Align::kLeft}, {"status", render::Align::kLeft}, {"cases"}, {"failed"}};
  for (const auto& run : runs) {
    const auto failed = std::count_if(run.cases.begin(), run.cases.end(), [](const store::CaseRecord& c) { return c.status == "failed"; });
    t.add_row({std::to_string(run.info.id), run.info.suite, run.info.model, run.info.status, std::to_string(run.cases.size()),
               std::to_string(failed)});
  }
  return t;
}

render::Section run_section(const StoredRun& run) {
  const store::RunInfo& r = run.info;
  render::Section s;
  s.title = fmt::format("Run {} — {} ({})", r.id, r.suite, r.status);
  s.facts = {{"model", r.model},
             {"created", r.created_at},
             {"finished", r.finished_at.empty() ? "-" : r.finished_at},
             {"engine", r.engine_commit},
             {"seed", std::to_string(r.seed)}};
  // The engine's arithmetic beside the parameters, for the runs that have one.
  if (const std::string n = numerics_summary(r.params); !n.empty()) s.facts.push_back({"numerics", n});
  s.facts.push_back({"parameters", readable(r.params)});
  const json host = r.host.is_object() ? r.host : json::object();  // a run stored without host facts still renders
  s.facts.push_back({"host", fmt::format("{} ({} cores), {}", host.value("cpu", "?"), host.value("logical_cores", 0), host.value("os", "?"))});
  s.facts.push_back({"ceilings", ceilings_fact(r.host)});
  s.tables.push_back(view_of(r.suite).table(run.cases));
  return s;
}

}  // namespace

render::Document build_report(const std::vector<StoredRun>& runs) {
  render::Document doc;
  std::string ids;
  for (const auto& run : runs) ids += (ids.empty() ? "" : ", ") + std::to_string(run.info.id);
  doc.title = fmt::format("v4bench report — run{} {}", runs.size() == 1 ? "" : "s", ids);

  // First the summary: the headline at 1M tokens, one line per run, and the charts across runs;
  // then each run with its own table and figures.
  ContextCurves curves;
  for (const auto& run : runs) view_of(run.info.suite).add_to(curves, run);
  if (!curves.at_1m.empty()) {
    render::Section s{"Headline at 1M tokens", {}, {}, {headline(curves)}, {}};
    s.paragraphs.push_back("V4 models against the baseline at 1M tokens: KV with FP8 storage, decode FLOPs per token FP8-equivalent and raw.");
    doc.sections.push_back(std::move(s));
  }
  doc.sections.push_back({"Runs", {}, {}, {runs_table(runs)}, {}});
  if (auto charts = context_charts(curves); !charts.empty())
    doc.sections.push_back({"KV cache and FLOPs against context", {}, {}, {}, std::move(charts)});
  for (const auto& run : runs) {
    render::Section s = run_section(run);
    s.figures = view_of(run.info.suite).figures(run);
    doc.sections.push_back(std::move(s));
  }
  return doc;
}

std::string numerics_summary(const json& p) {
  if (!p.is_object()) return "";
  auto text = [](const json& v) {
    if (v.is_string()) return v.get<std::string>();
    std::string out;
    if (v.is_array())
      for (const auto& x : v) {
        if (!out.empty()) out += ',';
        out += x.is_string() ? x.get<std::string>() : x.dump();
      }
    return out.empty() ? v.dump() : out;
  };
  std::string out;
  if (p.contains("numerics")) {
    const json& n = p.at("numerics");
    if (!n.is_object()) return text(n);
    // In the run's model order where it has one (a JSON object's keys are sorted).
    std::vector<std::string> models;
    if (p.contains("models") && p.at("models").is_array())
      for (const auto& m : p.at("models"))
        if (m.is_string() && n.contains(m.get<std::string>()) &&
            std::find(models.begin(), models.end(), m.get<std::string>()) == models.end())
          models.push_back(m.get<std::string>());
    for (const auto& [model, v] : n.items())
      if (std::find(models.begin(), models.end(), model) == models.end()) models.push_back(model);
    for (const auto& model : models) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", model, text(n.at(model)));
    return out;
  }
  if (p.contains("base_numerics")) out = "base " + text(p.at("base_numerics"));
  if (p.contains("cand_numerics_list")) {
    if (!out.empty()) out += ", ";
    out += "candidate " + text(p.at("cand_numerics_list"));
  }
  return out;
}

}  // namespace v4b::views
