// Suite `analyze`: the analytic KV-cache and decode-FLOPs projection of each model against a
// baseline, per context length. Runs no model; reads configs only.
#pragma once

#include <map>

#include "engine/models/model_config.h"
#include "evals/suites/suite.h"
#include "reports/schema/analyze.h"  // the metric names its cases store

namespace v4b::evals {

// The analyze suite's parameters, as a run stores them; a case is one model at one context.
struct AnalyzeParams {
  std::vector<std::string> models;
  std::string baseline;
  std::vector<int64_t> ctx;
  std::string kv_format = "fp8";

  static AnalyzeParams from_json(const nlohmann::json& j);  // UsageError for a value of the wrong type
  nlohmann::json to_json() const;
  void validate() const;  // known models and format, positive contexts
};

class AnalyzeSuite : public Suite {
 public:
  std::string name() const override { return "analyze"; }
  std::string summary() const override;
  std::string description() const override;
  void add_options(CLI::App& cmd) override;
  nlohmann::json params() const override;
  std::vector<Cell> plan(const nlohmann::json& params, uint64_t seed, Backend* backend) const override;

 protected:
  CaseOutput measure(const Case& c, Backend* backend) override;

 private:
  const ModelConfig& model(const std::string& name);

  std::string models_ = "v4-pro,v4-flash";
  std::string baseline_ = "v3.2";
  std::string ctx_ = "4k,128k,1m";
  std::string kv_format_ = "fp8";
  std::map<std::string, ModelConfig> configs_;
};

}  // namespace v4b::evals
