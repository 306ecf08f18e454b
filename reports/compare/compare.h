// `v4bench compare BASE CAND [--gate FILE]`: two stored runs of one suite, case by case. Every
// metric's delta is reported; a gate file names the metrics that can fail a build, with the
// direction that is better, tolerances, and the test that must also find the change significant
// (paired McNemar on per-sample correctness, paired bootstrap on per-sample scores, Mann-Whitney
// on unpaired timings). Runs whose model or parameters differ are flagged as not comparable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/store/store.h"

namespace v4b::compare {

struct LoadedRun {
  std::string label;  // "db.sqlite:12"
  store::RunInfo info;
  std::vector<store::CaseRecord> cases;
};

enum class Test { kNone, kMcNemar, kBootstrap, kMannWhitney };

struct GateRule {
  std::string metric, suite;  // suite "" = any
  bool higher_is_better = true;
  double abs_tol = 0, rel_tol = 0, min_effect = 0, alpha = 0.05;
  Test test = Test::kNone;
  std::string sample_field;           // the per-sample value the test reads
  std::string pair_by;                // sample detail that pairs base and candidate samples ("" = sample index)
  std::vector<std::string> group_by;  // case params whose values pool cases ("" = each case alone)
};

// Parses a gate file's JSON; throws UsageError naming the bad rule and key.
std::vector<GateRule> parse_gate(const nlohmann::json& gate);

struct Check {
  std::string metric, group;  // group: "depth=50" or the case key
  double base = 0, cand = 0, threshold = 0;
  std::string test;  // "mcnemar", ... or "none"
  double p = -1;     // -1: no test
  int64_t n = 0;     // pairs (or samples) the test used
  bool regressed = false;
  std::string why;  // for a regression: what moved and by how much
};

struct MetricDelta {
  std::string metric;
  int64_t cases = 0;
  double base_mean = 0, cand_mean = 0;
};

struct Comparison {
  std::vector<std::string> mismatches;  // model / parameter differences, cases in one run only
  std::vector<MetricDelta> deltas;      // every metric both runs have, averaged over shared cases
  std::vector<Check> checks;            // one per gate rule x group
  bool regressed() const;
};

Comparison compare_runs(const LoadedRun& base, const LoadedRun& cand, const std::vector<GateRule>& rules, uint64_t seed = 0);

// Markdown for a CI comment: verdict first, what regressed and why, then the checks and deltas.
std::string markdown(const Comparison& c, const LoadedRun& base, const LoadedRun& cand, bool allow_mismatch);
nlohmann::json to_json(const Comparison& c, const LoadedRun& base, const LoadedRun& cand);

}  // namespace v4b::compare
