// The recall suite's view: accuracy per task, context, depth and attention mode with the paired
// native-vs-dense comparison, RULER averages and effective length; NIAH heatmaps per run.
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "common/units.h"
#include "reports/render/heatmap.h"
#include "reports/render/views/view.h"
#include "reports/schema/recall.h"
#include "reports/stats/stats.h"

namespace v4b::views {
namespace {

namespace m = schema::recall;
using nlohmann::json;

std::string depth_label(const json& d) { return d.is_string() ? d.get<std::string>() : fmt::format("{:g}", d.get<double>()); }

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

class RecallView : public SuiteView {
 public:
  render::Table table(const std::vector<store::CaseRecord>& cases) const override {
    using render::Align;
    render::Table t;
    // A paired case (native-dense) holds a difference, in its own column.
    t.columns = {{"task", Align::kLeft}, {"ctx"}, {"depth"}, {"attention", Align::kLeft}, {"accuracy %"}, {"native − dense (points)"},
                 {"mcnemar p"}, {"KL nats"}, {"top-1 agree"}, {"n"}};
    auto num = [](const json& r, const char* k, const char* f) {
      return r.contains(k) ? fmt::format(fmt::runtime(f), r[k].get<double>()) : std::string("-");
    };
    // RULER aggregate: per (attention, ctx), the mean over the RULER tasks' scores.
    std::map<std::string, std::map<int64_t, std::vector<double>>> ruler;
    for (const auto& c : cases) {
      const json r = case_row(c);
      const std::string att = r.value("attention", "");
      const bool pair = att == m::kPairedAttention;
      t.add_row({r.value("task", ""), format_size(r.value("ctx", int64_t{0})), depth_label(r.value("depth", json("random"))), att,
                 pair ? "" : num(r, m::kAccuracy, "{:.1f}"), pair ? num(r, m::kAccuracyDiff, "{:+.1f}") : "", num(r, m::kMcnemarP, "{:.3g}"),
                 num(r, m::kKlNativeDense, "{:.4g}"), num(r, m::kTop1Agreement, "{:.3f}"), pair ? "" : num(r, m::kNSamples, "{:.0f}")});
      if (!pair && r.value("task", "") != "niah" && r.contains(m::kAccuracy))
        ruler[att][r.value("ctx", int64_t{0})].push_back(r[m::kAccuracy].get<double>());
    }
    for (const auto& [att, by_ctx] : ruler) {
      std::map<int64_t, double> avg;
      for (const auto& [ctx, scores] : by_ctx) {
        avg[ctx] = mean(scores);
        t.add_row({"RULER avg", format_size(ctx), "", att, fmt::format("{:.1f}", avg[ctx]), "", "", "", "", fmt::format("{}", scores.size())});
      }
      const int64_t eff = stats::effective_length(avg);
      t.add_row({"effective length", eff ? format_size(eff) : "none", "", att, fmt::format("> {:g}", stats::kEffectiveLengthThreshold), "",
                 "", "", "", ""});
    }
    for (const auto& c : cases)
      if (c.params.value("model", "").ends_with("-probe")) {  // the probe presets, v4-probe and gqa-probe
        t.notes.push_back(
            c.params.value("model", "") + " is a constructed probe (engine/synth/probe.h), not a trained model: its dense and window paths copy the needle by "
            "construction and its compressed path cannot copy a token, so native accuracy near 0 (and a large native-dense KL) is "
            "what it is built to show; it tests the harness and the attention paths, not DeepSeek-V4's recall.");
        break;
      }
    for (const auto& c : cases)
      if (c.params.contains("numerics")) {
        t.notes.push_back(fmt::format("{} with {} numerics", c.params.value("model", ""), c.params["numerics"].get<std::string>()));
        break;
      }
    return t;
  }

  // NIAH accuracy by needle depth (rows) and context (columns), one map per attention mode, and
  // native minus dense from the paired cases.
  std::vector<render::Figure> figures(const StoredRun& run) const override {
    std::map<std::string, std::map<std::pair<double, int64_t>, double>> by_mode;
    std::set<double> depths;
    std::set<int64_t> ctxs;
    for (const auto& c : run.cases) {
      const json row = case_row(c);
      if (row.value("task", "") != "niah" || !row.contains("depth") || !row["depth"].is_number()) continue;
      const std::string att = row.value("attention", "");
      const char* metric = att == m::kPairedAttention ? m::kAccuracyDiff : m::kAccuracy;
      if (!row.contains(metric)) continue;
      const double depth = row["depth"];
      const int64_t ctx = row.value("ctx", int64_t{0});
      depths.insert(depth), ctxs.insert(ctx);
      by_mode[att][{depth, ctx}] = row[metric];
    }
    std::vector<render::Figure> figs;
    std::vector<std::string> cols, rows;
    for (int64_t c : ctxs) cols.push_back(format_size(c));
    for (double d : depths) rows.push_back(fmt::format("{:g}%", d));
    const int64_t id = run.info.id;
    for (const auto& [att, cells] : by_mode) {
      std::vector<std::vector<double>> values;
      for (double d : depths) {
        values.emplace_back();
        for (int64_t c : ctxs) values.back().push_back(cells.count({d, c}) ? cells.at({d, c}) : std::nan(""));
      }
      const bool diff = att == m::kPairedAttention;
      render::HeatmapSpec spec{diff ? fmt::format("Run {}: NIAH accuracy, native minus dense (points)", id)
                                    : fmt::format("Run {}: NIAH accuracy (%), {} attention", id, att),
                               "context (tokens)", "needle depth", diff ? -100.0 : 0.0, 100, diff, diff ? "{:+.0f}" : "{:.0f}"};
      figs.push_back({spec.title, fmt::format("recall_{}_{}.svg", id, diff ? "native_minus_dense" : att),
                      render::heatmap_svg(spec, cols, rows, values)});
    }
    return figs;
  }
};

}  // namespace

std::unique_ptr<SuiteView> make_recall_view() { return std::make_unique<RecallView>(); }

}  // namespace v4b::views
