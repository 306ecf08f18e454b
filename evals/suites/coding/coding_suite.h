// Suite `coding`: execution-based pass@k on HumanEval(+), MBPP(+) and LiveCodeBench-style problems,
// with programs from the engine, an OpenAI-compatible server, the canonical solutions or a file,
// each graded in the sandbox (evals/suites/coding/sandbox.h).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "evals/suites/coding/sources.h"
#include "evals/suites/coding/grader.h"
#include "evals/suites/coding/problems.h"
#include "evals/suites/suite.h"
#include "reports/schema/coding.h"  // the metric names its cases store

namespace v4b::evals {

class CodingSuite : public Suite {
 public:
  std::string name() const override { return "coding"; }
  std::string summary() const override;
  std::string description() const override;
  void add_options(CLI::App& cmd) override;
  nlohmann::json params() const override;
  std::optional<BackendSpec> backend_spec(const nlohmann::json& params, uint64_t seed) const override;
  std::vector<Cell> plan(const nlohmann::json& params, uint64_t seed, Backend* backend) const override;
  std::string model_label(const nlohmann::json& params) const override;
  std::optional<CaseOutput> summarize(const std::vector<store::CaseRecord>& cases) const override;
  nlohmann::json host_notes(const nlohmann::json& params) const override;

 protected:
  CaseOutput measure(const Case& c, Backend* backend) override;

 private:
  // Flags.
  std::string dataset_ = "humaneval+", backend_ = "oracle", model_, samples_, k_ = "1", tasks_, base_url_, api_ = "chat",
              api_key_, time_mode_ = "cpu", memory_ = "4g", numerics_;
  int n_ = 1, workers_ = 2, limit_ = 0, chunk_ = 16;
  int64_t max_new_tokens_ = 512;
  double temperature_ = 0, top_p_ = 0.95, time_floor_ = 4.0, time_factor_ = 4.0;

  // Loaded on first use by execute().
  std::string loaded_dataset_;
  std::vector<coding::Problem> problems_;
  std::unique_ptr<coding::SampleSource> backend_impl_;
  std::unique_ptr<coding::Grader> grader_;
};

}  // namespace v4b::evals
