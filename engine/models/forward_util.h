// Small helpers shared by the model forward passes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <memory>

#include "engine/kernels/cpu/matmul.h"
#include "engine/runtime/engine.h"

namespace v4b {

// Row `row` of a BF16 / F32 embedding table as FP32 (UsageError for other layouts).
void embedding_row(const WeightMatrix& embed, int64_t row, float* out);

// The whole matrix widened to FP32 [rows][cols] (FP8 blocks times their scale); for the few
// weights a model uses in another shape than y = x·Wᵀ (MLA's absorbed kv_b).
std::vector<float> dequantize(const WeightMatrix& w);

// A WeightMatrix view of FP32 data [rows][cols] (the data must outlive it).
WeightMatrix f32_matrix(const float* data, int64_t rows, int64_t cols);

// Throws UsageError for a token id outside [0, vocab).
void check_tokens(std::span<const int32_t> tokens, int64_t vocab);

// Logits of the final normed hidden rows h [rows][d] through the LM head: the last row's logits
// are kept in `last` (and returned); all rows' go to `all` when it is given.
std::span<const float> head_logits(const KernelContext& ctx, const WeightMatrix& head, const float* h, int64_t rows,
                                   std::vector<float>& last, std::vector<float>* all);

// The Engine of one model family: shared read-only weights, one SessionT per new_session().
// WeightsT has a ModelConfig `m`; SessionT is constructed from (weights, options, pool, isa).
template <class SessionT, class WeightsT>
class ModelEngine final : public Engine {
 public:
  ModelEngine(std::shared_ptr<const WeightsT> w, EngineOptions o) : w_(std::move(w)), o_(o) {}
  const ModelConfig& config() const override { return w_->m; }
  std::unique_ptr<Session> new_session(const SessionOptions& opts) const override {
    return std::make_unique<SessionT>(w_, opts, o_.pool, o_.isa);
  }

 private:
  std::shared_ptr<const WeightsT> w_;
  EngineOptions o_;
};

}  // namespace v4b
