// The coding suite's view: per chunk the graded samples by status; pass@k with its 95% interval
// on the summary case.
#include <algorithm>

#include <fmt/format.h>

#include "reports/render/views/view.h"
#include "reports/schema/coding.h"

namespace v4b::views {
namespace {

namespace m = schema::coding;
using nlohmann::json;

std::string format_rate(const json& row, const std::string& name) {
  if (!row.contains(name)) return "";
  return fmt::format("{:.4f} [{:.3f}, {:.3f}]", row.value(name, 0.0), row.value(name + m::kCiLoSuffix, 0.0),
                     row.value(name + m::kCiHiSuffix, 0.0));
}

class CodingView : public SuiteView {
 public:
  render::Table table(const std::vector<store::CaseRecord>& cases) const override {
    using render::Align;
    render::Table t;
    t.columns = {{"case", Align::kLeft}, {"problems"}, {"samples"}, {"passed"}, {"passed+"}, {"fail"}, {"timeout"}, {"error"}, {"oom"}};
    std::vector<std::string> rates;  // pass_at_<k>[_plus], in the summary case's order
    for (const auto& c : cases)
      for (const auto& x : c.metrics)
        if (x.name.starts_with(m::kPassAtPrefix) && !x.name.ends_with(m::kCiLoSuffix) && !x.name.ends_with(m::kCiHiSuffix) &&
            std::find(rates.begin(), rates.end(), x.name) == rates.end())
          rates.push_back(x.name);
    for (const auto& r : rates) t.columns.push_back({r + " [95% CI]"});
    for (const auto& c : cases) {
      const json row = case_row(c);
      auto count = [&](const std::string& k) { return row.contains(k) ? fmt::format("{}", row.value(k, 0.0)) : std::string(); };
      auto status = [&](const char* s) { return count(std::string(m::kStatusPrefix) + s); };
      std::vector<std::string> cells = {c.key + (c.status == "failed" ? " (FAILED)" : ""), count(m::kProblems), count(m::kSamples),
                                        count(m::kPassed), count(m::kPassedPlus), status("fail"), status("timeout"), status("error"),
                                        status("oom")};
      for (const auto& r : rates) cells.push_back(format_rate(row, r));
      t.add_row(std::move(cells));
    }
    return t;
  }
};

}  // namespace

std::unique_ptr<SuiteView> make_coding_view() { return std::make_unique<CodingView>(); }

}  // namespace v4b::views
