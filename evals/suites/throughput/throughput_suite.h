// Suite `throughput`: a load generator against any OpenAI-compatible endpoint (or the embedded
// engine in process), one case per fixed concurrency or Poisson arrival rate, with vLLM's serving
// metrics (serving_metrics.h), goodput under SLOs, and cost per million tokens from a price per
// hour beside published API prices.
#pragma once

#include <memory>
#include <mutex>

#include "engine/io/tokenizer.h"
#include "evals/backends/backend.h"
#include "evals/suites/suite.h"
#include "reports/schema/throughput.h"  // the metric names its cases store

namespace v4b::evals {

// A published per-token price (USD per million tokens); a negative price is not published.
struct ApiPrice {
  std::string name;
  double input_usd_per_m = -1, output_usd_per_m = -1;
  std::string source;
};
// The built-in table, each entry with its source.
const std::vector<ApiPrice>& published_prices();
// A user prices file: {"NAME": {"input_per_m": X, "output_per_m": Y, "source": "..."}, ...}.
std::vector<ApiPrice> read_prices_file(const std::string& path);

class ThroughputSuite : public Suite {
 public:
  std::string name() const override { return "throughput"; }
  std::string summary() const override;
  std::string description() const override;
  void add_options(CLI::App& cmd) override;
  nlohmann::json params() const override;
  std::optional<BackendSpec> backend_spec(const nlohmann::json& params, uint64_t seed) const override;
  std::vector<Cell> plan(const nlohmann::json& params, uint64_t seed, Backend* backend) const override;
  std::string model_label(const nlohmann::json& params) const override;

 protected:
  CaseOutput measure(const Case& c, Backend* backend) override;

 private:
  const Tokenizer& tokenizer(const std::string& path);

  std::string backend_ = "http", base_url_, endpoint_ = "/v1/completions", model_, api_key_, tokenizer_path_;
  std::string concurrency_ = "1,4", rate_, input_len_ = "128", output_len_ = "32", slo_, prices_file_;
  std::string numerics_;  // --backend engine: "" = the model's default
  int64_t num_prompts_ = 16, warmup_ = 2, max_concurrency_ = 0;
  double price_per_hour_ = 0, timeout_s_ = 600;
  bool ignore_eos_ = false;
  int threads_ = 0;

  std::unique_ptr<Tokenizer> tok_;

};

}  // namespace v4b::evals
