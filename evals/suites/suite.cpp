#include "evals/suites/suite.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/errors.h"
#include "evals/suites/analyze/analyze_suite.h"
#include "evals/suites/coding/coding_suite.h"
#include "evals/suites/flops/flops_suite.h"
#include "evals/suites/kld/kld_suite.h"
#include "evals/suites/kv/kv_suite.h"
#include "evals/suites/recall/recall_suite.h"
#include "evals/suites/throughput/throughput_suite.h"

namespace v4b::evals {

const std::vector<SuiteEntry>& suite_registry() {
  static const std::vector<SuiteEntry> all = {
      {"analyze", [] { return std::unique_ptr<Suite>(new AnalyzeSuite()); }},
      {"kv", [] { return std::unique_ptr<Suite>(new KvSuite()); }},
      {"flops", [] { return std::unique_ptr<Suite>(new FlopsSuite()); }},
      {"recall", [] { return std::unique_ptr<Suite>(new RecallSuite()); }},
      {"kld", [] { return std::unique_ptr<Suite>(new KldSuite()); }},
      {"throughput", [] { return std::unique_ptr<Suite>(new ThroughputSuite()); }},
      {"coding", [] { return std::unique_ptr<Suite>(new CodingSuite()); }},
  };
  return all;
}

std::vector<Cell> cells_of(std::vector<Case> cases) {
  std::vector<Cell> cells;
  for (auto& c : cases) cells.push_back({{std::move(c)}});
  return cells;
}

std::optional<BackendSpec> Suite::backend_spec(const nlohmann::json&, uint64_t) const { return std::nullopt; }

std::vector<CaseOutput> Suite::execute(const Cell& cell, Backend* backend) {
  std::vector<CaseOutput> out;
  for (const Case& c : cell.cases) out.push_back(measure(c, backend));
  return out;
}

CaseOutput Suite::measure(const Case&, Backend*) { throw std::logic_error(name() + " overrides neither execute() nor measure()"); }

std::unique_ptr<Suite> make_suite(const std::string& name) {
  std::string known;
  for (const auto& e : suite_registry()) {
    if (e.name == name) return e.make();
    known += (known.empty() ? "" : ", ") + e.name;
  }
  throw UsageError(fmt::format("unknown suite '{}': expected one of {}", name, known));
}

std::optional<CaseOutput> Suite::summarize(const std::vector<store::CaseRecord>&) const { return std::nullopt; }
nlohmann::json Suite::host_notes(const nlohmann::json&) const { return nullptr; }

std::string Suite::model_label(const nlohmann::json& params) const {
  std::string label;
  for (const auto& m : params.value("models", nlohmann::json::array())) label += (label.empty() ? "" : ",") + m.get<std::string>();
  return label;
}
}  // namespace v4b::evals
