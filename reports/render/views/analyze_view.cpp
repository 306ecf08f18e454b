// The analyze suite's view: the analytic KV, FLOPs and parameter counts of each model against its
// baseline (models beyond their trained context marked).
#include <fmt/format.h>

#include "common/units.h"
#include "reports/render/views/cost_points.h"
#include "reports/schema/analyze.h"

namespace v4b::views {
namespace {

namespace m = schema::analyze;

class AnalyzeView : public SuiteView {
 public:
  render::Table table(const std::vector<store::CaseRecord>& cases) const override {
    using render::Align;
    render::Table t;
    t.columns = {{"model", Align::kLeft}, {"vs", Align::kLeft}, {"ctx"}, {"KV GiB"}, {"KV B/token"}, {"KV ratio"},
                 {"GFLOP/tok raw"}, {"raw ratio"}, {"GFLOP/tok fp8eq"}, {"fp8eq ratio"}, {"params"}, {"active"}};
    bool any_beyond = false;
    for (const auto& c : cases) {
      const nlohmann::json r = case_row(c);
      auto num = [&](const char* k) { return r.value(k, 0.0); };
      const std::string beyond = num(m::kBeyondMaxCtx) > 0 ? "*" : "";
      const std::string base_beyond = num(m::kBaselineBeyondMaxCtx) > 0 ? "*" : "";
      any_beyond |= !beyond.empty() || !base_beyond.empty();
      t.add_row({r.value("model", "") + beyond, r.value("baseline", "") + base_beyond, format_size(r.value("ctx", int64_t{0})),
                 fmt::format("{:.3f}", num(m::kKvBytes) / (1024.0 * 1024 * 1024)), fmt::format("{:.0f}", num(m::kKvBytesPerToken)),
                 fmt::format("{:.1f}%", 100 * num(m::kKvRatio)), fmt::format("{:.1f}", num(m::kFlopsRaw) / 1e9),
                 fmt::format("{:.1f}%", 100 * num(m::kFlopsRawRatio)), fmt::format("{:.1f}", num(m::kFlopsFp8eq) / 1e9),
                 fmt::format("{:.1f}%", 100 * num(m::kFlopsFp8eqRatio)), fmt::format("{:.1f}B", num(m::kParamsTotal) / 1e9),
                 fmt::format("{:.2f}B", num(m::kParamsActive) / 1e9)});
    }
    if (any_beyond) t.notes.push_back("* ctx exceeds that model's max_position_embeddings: an analytic projection only");
    return t;
  }

  void add_to(ContextCurves& curves, const StoredRun& run) const override {
    for (const auto& c : run.cases) {
      const nlohmann::json row = case_row(c);
      add_kv_point(curves, row, m::kKvBytes);
      add_flops_point(curves, row, m::kFlopsFp8eq);
      if (auto* h = headline_entry(curves, row)) {
        take(h->kv_ratio, row, m::kKvRatio);
        take(h->fp8eq_ratio, row, m::kFlopsFp8eqRatio);
        take(h->raw_ratio, row, m::kFlopsRawRatio);
      }
    }
  }
};

}  // namespace

std::unique_ptr<SuiteView> make_analyze_view() { return std::make_unique<AnalyzeView>(); }

}  // namespace v4b::views
