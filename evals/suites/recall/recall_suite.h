// Suite `recall`: long-context recall fidelity. NIAH depth x length grids and RULER's synthetic
// tasks, each sample run under every requested attention mode on the same weights, scored with
// RULER's metrics, with the paired native-vs-dense comparison (McNemar, KL, top-1 agreement at the
// answer positions) binned by needle depth and by distance to a compression-block boundary.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "evals/backends/backend.h"
#include "evals/suites/recall/generators.h"
#include "evals/suites/recall/recall_params.h"
#include "evals/suites/suite.h"
#include "reports/schema/recall.h"  // the metric names its cases store

namespace v4b::evals {

class RecallSuite : public Suite {
 public:
  RecallSuite();
  ~RecallSuite() override;
  std::string name() const override { return "recall"; }
  std::string summary() const override;
  std::string description() const override;
  void add_options(CLI::App& cmd) override;
  nlohmann::json params() const override;
  std::optional<BackendSpec> backend_spec(const nlohmann::json& params, uint64_t seed) const override;
  std::vector<Cell> plan(const nlohmann::json& params, uint64_t seed, Backend* backend) const override;
  std::vector<CaseOutput> execute(const Cell& cell, Backend* backend) override;

  // Per sample of one cell (task, ctx, depth): what each attention mode answered, and the paired
  // divergences. Computed once for all the cell's cases.
  struct ModeAnswer {
    std::string prediction;
    double score = 0;
    int64_t prompt_tokens = 0, completion_tokens = 0;
    double seconds = 0;
  };
  struct SampleResult {
    recall::RecallSample sample;
    std::vector<ModeAnswer> modes;  // in params["attention"] order
    double kl = -1, top1 = -1;      // paired native vs dense, mean over answer positions; -1: none
    double kl_max = -1;
  };

 private:
  // The prompt generator for these params on the backend's tokens (built once per backend and template).
  const recall::Generator& generator(const recall::RecallParams& p, const Backend& backend) const;
  // Every sample of a cell under every attention mode, with the paired divergences.
  std::vector<SampleResult> run_cell(const recall::RecallCell& cell, Backend& backend) const;
  // One case's output from its cell's samples.
  CaseOutput case_output(const Case& c, const recall::RecallParams& run, const std::vector<SampleResult>& cell, const Backend& backend) const;

  std::string tasks_ = "niah", model_, attention_, ctx_ = "4k", depths_ = "0,25,50,75,100";
  int samples_ = 1, max_new_ = 0, threads_ = 0;
  std::string template_ = "default", needle_, question_, answer_prefix_, tokenizer_, backend_ = "engine", base_url_, api_key_;
  std::string numerics_;  // "" = the model's default
  bool map_ids_ = false;

  mutable std::unique_ptr<recall::Generator> gen_;
  mutable std::string gen_key_;
};

}  // namespace v4b::evals
