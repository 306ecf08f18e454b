// The flops suite's view: decode FLOPs per token per model and context, counted beside analytic.
#include <fmt/format.h>

#include "common/units.h"
#include "reports/render/views/cost_points.h"
#include "reports/schema/flops.h"

namespace v4b::views {
namespace {

namespace m = schema::flops;

class FlopsView : public SuiteView {
 public:
  render::Table table(const std::vector<store::CaseRecord>& cases) const override {
    using render::Align;
    render::Table t;
    t.columns = {{"model", Align::kLeft}, {"numerics", Align::kLeft}, {"ctx"}, {"GFLOP/tok"}, {"analytic"}, {"fp8eq"},
                 {"vs baseline (fp8eq)"}, {"raw vs baseline"}, {"source", Align::kLeft}};
    for (const auto& c : cases) {
      const nlohmann::json r = case_row(c);
      auto num = [&](const char* k) { return r.value(k, 0.0); };
      const bool projected = num(m::kProjected) > 0;
      t.add_row({r.value("model", ""), projected ? "-" : r.value("numerics", "-"), format_size(r.value("ctx", int64_t{0})),
                 fmt::format("{:.3f}", num(m::kFlops) / 1e9), fmt::format("{:.3f}", num(m::kFlopsAnalytic) / 1e9),
                 fmt::format("{:.3f}", num(m::kFlopsFp8eq) / 1e9), fmt::format("{:.1f}%", 100 * num(m::kFlopsRatio)),
                 fmt::format("{:.1f}%", 100 * num(m::kFlopsRawRatio)),
                 c.status == "failed" ? "MISMATCH" : projected ? "projected" : "measured"});
    }
    return t;
  }

  void add_to(ContextCurves& curves, const StoredRun& run) const override {
    for (const auto& c : run.cases) {
      const nlohmann::json row = case_row(c);
      add_flops_point(curves, row, m::kFlopsFp8eq);
      if (auto* h = headline_entry(curves, row)) {
        take(h->fp8eq_ratio, row, m::kFlopsRatio);
        take(h->raw_ratio, row, m::kFlopsRawRatio);
      }
    }
  }
};

}  // namespace

std::unique_ptr<SuiteView> make_flops_view() { return std::make_unique<FlopsView>(); }

}  // namespace v4b::views
