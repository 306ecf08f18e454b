#include "reports/render/views/view.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <fmt/format.h>

namespace v4b::views {

// Each defined in its suite's view file (<suite>_view.cpp).
std::unique_ptr<SuiteView> make_kv_view();
std::unique_ptr<SuiteView> make_flops_view();
std::unique_ptr<SuiteView> make_analyze_view();
std::unique_ptr<SuiteView> make_kld_view();
std::unique_ptr<SuiteView> make_recall_view();
std::unique_ptr<SuiteView> make_coding_view();
std::unique_ptr<SuiteView> make_throughput_view();

const SuiteView& view_of(const std::string& suite) {
  static const std::map<std::string, std::unique_ptr<SuiteView>> views = [] {
    std::map<std::string, std::unique_ptr<SuiteView>> v;
    v["kv"] = make_kv_view();
    v["flops"] = make_flops_view();
    v["analyze"] = make_analyze_view();
    v["kld"] = make_kld_view();
    v["recall"] = make_recall_view();
    v["coding"] = make_coding_view();
    v["throughput"] = make_throughput_view();
    return v;
  }();
  static const SuiteView generic;
  const auto it = views.find(suite);
  return it == views.end() ? generic : *it->second;
}

render::Table SuiteView::table(const std::vector<store::CaseRecord>& cases) const { return metrics_table(cases); }
std::vector<render::Figure> SuiteView::figures(const StoredRun&) const { return {}; }
void SuiteView::add_to(ContextCurves&, const StoredRun&) const {}

nlohmann::json SuiteView::sample_row(const store::CaseRecord& c, const store::Sample& s) const {
  nlohmann::json row = {{"case", c.key}, {"index", s.index}};
  if (s.details.is_object()) row.update(s.details);
  else row["details"] = s.details;
  return row;
}

nlohmann::json case_row(const store::CaseRecord& c) {
  nlohmann::json row = c.params.is_object() ? c.params : nlohmann::json::object();
  for (const auto& m : c.metrics) row[m.name] = m.value;
  if (c.status == "failed") row["error"] = failure_reason(c);
  return row;
}

std::string failure_reason(const store::CaseRecord& c) {
  for (auto it = c.samples.rbegin(); it != c.samples.rend(); ++it)
    if (it->details.is_object() && it->details.contains("error") && it->details["error"].is_string()) return it->details["error"];
  return "";
}

namespace {
std::string format_metric(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && std::abs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{:.6g}", v);
}
}  // namespace

render::Table metrics_table(const std::vector<store::CaseRecord>& cases) {
  render::Table t;
  t.columns.push_back({"case", render::Align::kLeft});
  std::vector<std::string> names;
  for (const auto& c : cases)
    for (const auto& m : c.metrics)
      if (std::find(names.begin(), names.end(), m.name) == names.end()) names.push_back(m.name);
  for (const auto& n : names) t.columns.push_back({n, render::Align::kRight});
  for (const auto& c : cases) {
    std::vector<std::string> row{c.key};
    for (const auto& n : names) {
      auto it = std::find_if(c.metrics.begin(), c.metrics.end(), [&](const store::Metric& m) { return m.name == n; });
      row.push_back(it == c.metrics.end() ? "" : format_metric(it->value));
    }
    t.add_row(std::move(row));
  }
  return t;
}

}  // namespace v4b::views
