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
    // The engine folds prompt ids into a synthetic preset's toy vocabulary (and says so per sample).
    const bool synthetic = std::any_of(cases.begin(), cases.end(), [](const store::CaseRecord& c) {
      return std::any_of(c.samples.begin(), c.samples.end(), [](const store::Sample& s) {
        return s.details.is_object() && s.details.contains("generation") && s.details["generation"].is_object() &&
               s.details["generation"].value("folded_vocab", false);
      });
    });
    if (synthetic)
      t.notes.push_back(
          "The model is a synthetic preset with random weights (its vocabulary is smaller than the tokenizer's): its programs are "
          "noise, so failures and errors here test the harness and the sandbox, not a model's coding.");
    return t;
  }

  // A graded program: the problem is the document, the program the prediction, pass the score.
  json sample_row(const store::CaseRecord& c, const store::Sample& s) const override {
    json row = SuiteView::sample_row(c, s);
    if (!s.details.is_object() || !s.details.contains("task_id")) return row;  // the summary's or a failed chunk's
    row["doc_id"] = s.details["task_id"];
    if (s.details.contains("program")) row["prediction"] = s.details["program"];
    row["score"] = s.details.value("pass", false) ? 1 : 0;
    return row;
  }
};

}  // namespace

std::unique_ptr<SuiteView> make_coding_view() { return std::make_unique<CodingView>(); }

}  // namespace v4b::views
