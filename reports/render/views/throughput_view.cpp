// The throughput suite's view: requests and tokens per second, latency medians, goodput and cost.
#include <fmt/format.h>

#include "reports/render/views/view.h"
#include "reports/schema/throughput.h"

namespace v4b::views {
namespace {

namespace m = schema::throughput;
using nlohmann::json;

// A row of a run stored before the metrics took vLLM's names, under the current names.
json current_names(json row) {
  const auto rename = [&](const std::string& old_name, const std::string& now) {
    if (row.contains(old_name) && !row.contains(now)) row[now] = row[old_name];
  };
  rename("duration_s", m::kDuration);
  rename("output_tok_per_s", m::kOutputThroughput);
  rename("total_tok_per_s", m::kTotalTokenThroughput);
  for (const char* what : {"ttft", "tpot", "itl", "e2el"})
    for (const char* stat : {"mean", "median", "std", "p90", "p99"}) rename(fmt::format("{}_ms_{}", what, stat), m::latency_metric(stat, what));
  return row;
}

class ThroughputView : public SuiteView {
 public:
  render::Table table(const std::vector<store::CaseRecord>& cases) const override {
    using render::Align;
    render::Table t;
    t.columns = {{"case", Align::kLeft}, {"ok"}, {"req/s"}, {"out tok/s"}, {"total tok/s"}, {"TTFT ms med"}, {"TTFT p99"},
                 {"TPOT ms med"}, {"ITL ms med"}, {"E2EL ms med"}, {"goodput"}, {"$/1M out"}};
    json prices;
    std::string numerics;
    for (const auto& c : cases) {
      const json r = current_names(case_row(c));
      auto f = [&](const std::string& k, const char* fmt_) {
        return r.contains(k) ? fmt::format(fmt::runtime(fmt_), r[k].get<double>()) : "-";
      };
      const double completed = r.value(m::kCompleted, 0.0);
      t.add_row({c.key, fmt::format("{}/{}", completed, completed + r.value(m::kFailed, 0.0)), f(m::kRequestThroughput, "{:.2f}"),
                 f(m::kOutputThroughput, "{:.1f}"), f(m::kTotalTokenThroughput, "{:.1f}"), f(m::latency_metric("median", "ttft"), "{:.1f}"),
                 f(m::latency_metric("p99", "ttft"), "{:.1f}"), f(m::latency_metric("median", "tpot"), "{:.2f}"),
                 f(m::latency_metric("median", "itl"), "{:.2f}"), f(m::latency_metric("median", "e2el"), "{:.1f}"),
                 f(m::kRequestGoodput, "{:.2f}"), f(m::kUsdPer1mOutput, "{:.3f}")});
      if (c.params.contains("prices")) prices = c.params["prices"];
      if (c.params.contains("numerics") && numerics.empty()) numerics = c.params["numerics"].get<std::string>();
    }
    if (!numerics.empty()) t.notes.push_back(fmt::format("engine numerics: {}", numerics));
    for (const auto& pr : prices.is_array() ? prices : json::array())
      if (pr.value("output_per_m", -1.0) >= 0)
        t.notes.push_back(fmt::format("{}: ${:.2f}/1M output tokens ({})", pr.value("name", ""), pr["output_per_m"].get<double>(),
                                      pr.value("source", "")));
    return t;
  }
};

}  // namespace

std::unique_ptr<SuiteView> make_throughput_view() { return std::make_unique<ThroughputView>(); }

}  // namespace v4b::views
