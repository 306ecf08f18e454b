// The embedded engine as a backend: generation through the continuous-batching Scheduler (so
// concurrent requests decode together), scoring and the engine-only timelines (KV and FLOP fills,
// logit streams) on the same loaded weights.
#pragma once

#include <memory>
#include <mutex>

#include "engine/core/thread_pool.h"
#include "evals/backends/backend.h"
#include "evals/backends/scheduler.h"

namespace v4b::evals {

// A model the engine can run here: a synthetic preset or a checkpoint directory (the published
// presets are analytic projections only).
bool is_runnable(const std::string& model);

class EngineBackend : public Backend {
 public:
  explicit EngineBackend(const BackendSpec& spec);  // UsageError: a model without weights, a tokenizer that does not fit
  ~EngineBackend() override;

  std::string kind() const override { return "engine"; }
  Generation generate(const GenerateRequest& req) override;
  std::vector<std::vector<float>> score(std::span<const int32_t> tokens, const Variant& v) override;
  const TokenCodec& tokens() const override;
  const Tokenizer& tokenizer() const;  // the tokenizer behind tokens()
  Capabilities capabilities() const override;
  nlohmann::json identity() const override;

  const ModelConfig& config() const { return engine_->config(); }
  Numerics numerics() const { return numerics_; }
  int threads() const { return pool_ ? pool_->size() : default_pool().size(); }
  // A fresh timeline of this model for measurements that step it themselves (the kv and flops
  // fills, kld's logit streams); bf16_activations as SessionOptions says.
  std::unique_ptr<Session> new_session(const Variant& v, bool bf16_activations = false) const;
  // Ids the model can take: folded into a synthetic preset's vocabulary when the spec asks
  // (fold_ids), else UsageError for an id past the vocabulary.
  std::vector<int32_t> model_ids(std::span<const int32_t> ids) const;

 private:
  BackendSpec spec_;
  std::unique_ptr<ThreadPool> pool_;  // only with BackendSpec::threads > 0
  std::unique_ptr<Engine> engine_;
  Numerics numerics_;
  mutable std::once_flag codec_once_;  // the tokenizer loads on first use: the fills never need it
  mutable std::unique_ptr<LocalCodec> codec_;
  std::once_flag sched_once_;
  std::unique_ptr<Scheduler> sched_;
};

}  // namespace v4b::evals
