// Suite `kv`: KV-cache bytes measured by the engine at each context, by kind and storage format,
// with the analytic model beside every figure and ratios to a baseline. Models the engine cannot
// run here (the published presets) get the analytic projection, marked projected.
#pragma once

#include <memory>

#include "evals/backends/engine_runs.h"
#include "evals/suites/engine_suite_params.h"
#include "evals/suites/suite.h"
#include "reports/schema/kv.h"  // the metric names its cases store

namespace v4b::evals {

class KvSuite : public Suite {
 public:
  std::string name() const override { return "kv"; }
  std::string summary() const override;
  std::string description() const override;
  void add_options(CLI::App& cmd) override;
  nlohmann::json params() const override;
  std::vector<Cell> plan(const nlohmann::json& params, uint64_t seed, Backend* backend) const override;

 protected:
  CaseOutput measure(const Case& c, Backend* backend) override;

 private:
  std::string models_ = "v4-pro,v4-flash", baseline_ = "v3.2", ctx_ = "4k,128k,1m", formats_ = "bf16,fp8", numerics_;
  std::unique_ptr<EngineRuns> runs_;
};

}  // namespace v4b::evals
