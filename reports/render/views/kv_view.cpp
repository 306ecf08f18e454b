// The kv suite's view: bytes per model, format and context, measured beside analytic.
#include <fmt/format.h>

#include "common/units.h"
#include "reports/render/views/cost_points.h"
#include "reports/schema/kv.h"

namespace v4b::views {
namespace {

namespace m = schema::kv;

class KvView : public SuiteView {
 public:
  render::Table table(const std::vector<store::CaseRecord>& cases) const override {
    using render::Align;
    render::Table t;
    t.columns = {{"model", Align::kLeft}, {"format", Align::kLeft}, {"numerics", Align::kLeft}, {"ctx"}, {"KV MiB"}, {"analytic MiB"},
                 {"B/token"}, {"vs baseline"}, {"state MiB"}, {"fill s"}, {"source", Align::kLeft}};
    for (const auto& c : cases) {
      const nlohmann::json r = case_row(c);
      auto num = [&](const char* k) { return r.value(k, 0.0); };
      const bool projected = num(m::kProjected) > 0;
      t.add_row({r.value("model", ""), r.value("kv_format", ""), projected ? "-" : r.value("numerics", "-"),
                 format_size(r.value("ctx", int64_t{0})), fmt::format("{:.2f}", num(m::kKvBytes) / 1048576),
                 fmt::format("{:.2f}", num(m::kKvBytesAnalytic) / 1048576), fmt::format("{:.0f}", num(m::kKvBytesPerToken)),
                 fmt::format("{:.1f}%", 100 * num(m::kKvRatio)), fmt::format("{:.2f}", num(m::kKvStateBytes) / 1048576),
                 r.contains(m::kFillSeconds) ? fmt::format("{:.1f}", num(m::kFillSeconds)) : "-",
                 c.status == "failed" ? "MISMATCH" : projected ? "projected" : "measured"});
    }
    return t;
  }

  void add_to(ContextCurves& curves, const StoredRun& run) const override {
    for (const auto& c : run.cases) {
      const nlohmann::json row = case_row(c);
      add_kv_point(curves, row, m::kKvBytes);
      if (auto* h = headline_entry(curves, row)) take(h->kv_ratio, row, m::kKvRatio);
    }
  }
};

}  // namespace

std::unique_ptr<SuiteView> make_kv_view() { return std::make_unique<KvView>(); }

}  // namespace v4b::views
