// Suite `flops`: FLOPs of one decode step at each context, counted by the engine by category, raw
// and FP8-equivalent, beside the analytic model and as ratios to a baseline; published models are
// projected analytically.
#pragma once

#include <memory>

#include "evals/backends/engine_runs.h"
#include "evals/suites/suite.h"
#include "reports/schema/flops.h"  // the metric names its cases store

namespace v4b::evals {

class FlopsSuite : public Suite {
 public:
  std::string name() const override { return "flops"; }
  std::string summary() const override;
  std::string description() const override;
  void add_options(CLI::App& cmd) override;
  nlohmann::json params() const override;
  std::vector<Cell> plan(const nlohmann::json& params, uint64_t seed, Backend* backend) const override;

 protected:
  CaseOutput measure(const Case& c, Backend* backend) override;

 private:
  std::string models_ = "v4-pro,v4-flash", baseline_ = "v3.2", ctx_ = "4k,128k,1m", numerics_;
  std::unique_ptr<EngineRuns> runs_;
};

}  // namespace v4b::evals
