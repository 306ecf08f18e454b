// Small helpers shared by the model forward passes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <memory>

#include "engine/kernels/cpu/matmul.h"
#include "engine/kv/kv_rows.h"
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

// Lightning-indexer selection (V4 §2.6, V3.2 DSA) for a chunk of queries: query i's score of key s
// is wscale · Σ_h head_w[i][h] · relu(q_ih · k_s) over the keys visible to it (the first
// visible[i]), and it keeps the top-k (by descending score, ties to the lower row). Keys are decoded a
// block at a time and scored for a group of queries in one product, so memory stays bounded.
// Counts each query's scoring as kIndexerScore work on ctx. exact_bf16: queries and keys are exact in
// BF16 (V4's FP4-quantised ones), so the products may run as BF16 dot products (matmul_bf16_exact).
std::vector<std::vector<int32_t>> index_select(const KernelContext& ctx, const KvRows& keys, const float* q, int64_t heads,
                                               const float* head_w, float wscale, const std::vector<int64_t>& visible,
                                               int64_t topk, bool exact_bf16);

// What every family's session shares: weights, options, counters, and a copyable StateT (with
// `pos` and `logits` beside the caches) that snapshot and restore copy whole. Derived sessions
// implement prefill, kv_bytes and reset, and call reset() from their own constructor.
template <class WeightsT, class StateT>
class ModelSession : public Session {
 public:
  ModelSession(std::shared_ptr<const WeightsT> w, SessionOptions o, ThreadPool* pool, CpuIsa isa)
      : w_(std::move(w)), o_(o), ctx_{pool, &counters_, isa} {}

  std::span<const float> logits() const override { return s_.logits; }
  int64_t position() const override { return s_.pos; }
  const OpCounters& counters() const override { return counters_; }
  void reset_counters() override { counters_.reset(); }
  std::unique_ptr<Snapshot> snapshot() const override { return std::make_unique<StateT>(s_); }
  void restore(const Snapshot& snap) override { s_ = dynamic_cast<const StateT&>(snap); }

 protected:
  const ModelConfig& m() const { return w_->m; }

  std::shared_ptr<const WeightsT> w_;
  SessionOptions o_;
  OpCounters counters_;
  KernelContext ctx_;
  StateT s_;
};

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
