// Suite `kld`: logit fidelity. A candidate (engine configuration or logits .npy) is compared with a
// base over one token sequence, streamed a block of positions at a time so memory stays
// O(block x vocab) at any length: KL(base || candidate), top-1 agreement and Δp, overall and in
// position bins. `v4bench kld` runs the same cases and prints them without storing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "evals/metrics/divergence.h"
#include "evals/suites/kld/kld_params.h"
#include "evals/suites/suite.h"
#include "reports/schema/kld.h"  // the metric names its cases store

namespace v4b::evals {

// One side of a comparison: an engine configuration, or a logits file when `source` ends in .npy.
struct LogitSide {
  std::string source, attention = "native", kv_format = "bf16";
  std::string numerics;  // "fp32" | "official"; "" = the model's default (files: unused)
  bool is_file() const;
  std::string label() const;  // "v4-small/native/bf16/official" (numerics when known) or the file name
};

struct KldRequest {
  LogitSide base;
  std::vector<LogitSide> cands;  // compared with the base in one pass over the sequence
  std::vector<int32_t> tokens;  // empty when both sides are files: their rows are the positions
  int64_t score_from = 0, bin = 1024;
  uint64_t seed = 0;  // synthetic weights of presets
};

struct KldResult {
  std::vector<DivergenceStats> stats;  // one per candidate, in request order
  int64_t positions = 0;               // length of the compared sequence
  double seconds = 0;                  // the whole pass
};

// Throws UsageError on mismatched vocabularies or a file with too few positions.
KldResult run_kld(const KldRequest& r, const std::function<void(int64_t done, int64_t total)>& progress = {});

class KldSuite : public Suite {
 public:
  std::string name() const override { return "kld"; }
  std::string summary() const override;
  std::string description() const override;
  void add_options(CLI::App& cmd) override;
  nlohmann::json params() const override;
  std::vector<Cell> plan(const nlohmann::json& params, uint64_t seed, Backend* backend) const override;
  std::string model_label(const nlohmann::json& params) const override;
  std::vector<CaseOutput> execute(const Cell& cell, Backend* backend) override;

 private:
  std::string base_, base_attention_ = "native", base_kv_ = "bf16", cand_, cand_attention_ = "native", cand_kv_ = "bf16";
  std::string base_numerics_, cand_numerics_;  // "" = each model's default
  std::string text_, haystack_, ids_, tokens_ = "4k";
  int64_t score_from_ = 0, bin_ = 1024;
};

// The token sequence of a kld case: a text file or a dataset haystack tokenized with the DeepSeek
// tokenizer (or the checkpoint's own), or explicit ids; ids beyond a synthetic preset's smaller
// vocabulary are folded into it (id mod vocab). At most `limit` tokens.
std::vector<int32_t> kld_tokens(const KldParams& params, int64_t vocab, int64_t* folded = nullptr);

}  // namespace v4b::evals
