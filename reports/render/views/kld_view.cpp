// The kld suite's view: KL(base || candidate), top-1 agreement and Δp for each pair of logit sides.
#include <filesystem>

#include <fmt/format.h>

#include "reports/render/views/view.h"
#include "reports/schema/kld.h"

namespace v4b::views {
namespace {

namespace m = schema::kld;
using nlohmann::json;

// A side as the kld suite names it: "v4-small/native/bf16/official", or a logits file's name.
std::string side_label(const json& row, const std::string& side) {
  const std::string source = row.value(side, "");
  if (source.ends_with(".npy")) return std::filesystem::path(source).filename().string();
  const std::string numerics = row.value(side + "_numerics", "");
  return fmt::format("{}/{}/{}", source, row.value(side + "_attention", ""), row.value(side + "_kv_format", "")) +
         (numerics.empty() ? "" : "/" + numerics);
}

class KldView : public SuiteView {
 public:
  render::Table table(const std::vector<store::CaseRecord>& cases) const override {
    using render::Align;
    render::Table t;
    t.columns = {{"base", Align::kLeft}, {"candidate", Align::kLeft}, {"positions"}, {"KL mean ± se"}, {"KL p99"}, {"KL max"},
                 {"top-1 agree"}, {"Δp mean"}, {"Δp rms"}};
    for (const auto& c : cases) {
      const json r = case_row(c);
      auto num = [&](const char* k) { return r.value(k, 0.0); };
      t.add_row({side_label(r, "base"), side_label(r, "cand"), fmt::format("{:.0f}", num(m::kPositions)),
                 fmt::format("{:.4g} ± {:.2g}", num(m::kKldMean), num(m::kKldStderr)), fmt::format("{:.4g}", num(m::kKldP99)),
                 fmt::format("{:.4g}", num(m::kKldMax)),
                 fmt::format("{:.2f}% ± {:.2f}", 100 * num(m::kTop1Agreement), 100 * num(m::kTop1Stderr)),
                 fmt::format("{:+.4f}", num(m::kDpMean)), fmt::format("{:.4f}", num(m::kDpRms))});
    }
    return t;
  }
};

}  // namespace

std::unique_ptr<SuiteView> make_kld_view() { return std::make_unique<KldView>(); }

}  // namespace v4b::views
