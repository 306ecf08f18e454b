// A view per suite: how reports show a suite's stored cases (its table, its own figures, and what
// it adds to the report's context charts and 1M-token headline). A view reads only the store: the
// params and metrics a suite wrote, by the names in reports/schema. It never sees a suite or the
// engine, so `v4bench report` renders any stored run, including runs of suites this build lacks.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/render/document.h"
#include "reports/render/svg.h"
#include "reports/render/table.h"
#include "reports/store/store.h"

namespace v4b::views {

// A run with its cases, read from the store once for every part of a report.
struct StoredRun {
  store::RunInfo info;
  std::vector<store::CaseRecord> cases;
};

// What runs of several suites draw together: KV bytes and decode FLOPs against context, and the
// V4-against-baseline ratios at 1M tokens.
struct ContextCurves {
  std::map<std::string, render::Series> kv_bytes;     // by "model kv_format"
  std::map<std::string, render::Series> flops_fp8eq;  // by model
  struct At1M {
    std::optional<double> kv_ratio, fp8eq_ratio, raw_ratio;
  };
  std::map<std::string, At1M> at_1m;  // by model: KV with FP8 storage, decode FLOPs per token
  std::string baseline;
};

class SuiteView {
 public:
  virtual ~SuiteView() = default;
  // The human table of a run's cases; by default the case key and every metric.
  virtual render::Table table(const std::vector<store::CaseRecord>& cases) const;
  // Figures of this run alone (recall's accuracy heatmaps); by default none.
  virtual std::vector<render::Figure> figures(const StoredRun& run) const;
  // Adds the run's points to the charts and headline that span runs; by default nothing.
  virtual void add_to(ContextCurves& curves, const StoredRun& run) const;
  // One per-sample record as `--output-path` writes it (a line of samples_<suite>_run<ID>.jsonl):
  // the case key and the sample's index, then what the suite stored for it. A suite whose samples
  // are model answers names them as lm-evaluation-harness's logs do: "prediction", "references"
  // (or "doc_id"), "score", and the prompt or "prompt_hash".
  virtual nlohmann::json sample_row(const store::CaseRecord& c, const store::Sample& s) const;
};

// The view of a suite by name; the generic one for a suite without its own.
const SuiteView& view_of(const std::string& suite);

// A case as one flat JSON object: its params merged with its metric values (metrics win on a
// name clash), and "error" for a failed case. The row shape of `--format json|csv` output for every suite.
nlohmann::json case_row(const store::CaseRecord& c);
// Why a failed case failed (the runner stores it as the case's last sample, details.error), or "".
std::string failure_reason(const store::CaseRecord& c);
// The generic table: case key and every metric, one row per case.
render::Table metrics_table(const std::vector<store::CaseRecord>& cases);

}  // namespace v4b::views
