// What the engine-backed suites share: one loaded engine per model and one growing session per
// (model, attention, KV format, numerics), filled with seeded synthetic token ids, so a run's contexts
// are reached by continuing one timeline rather than starting over for each. The sessions run with
// BF16 activations (official numerics imply them; fp32 numerics get them added): what these suites
// measure (bytes held, operations counted) does not depend on the arithmetic, and prefill then runs
// the BF16 dot-product GEMM at about twice the FP32 rate. The numerics are the caller's (resolved).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "engine/runtime/engine.h"
#include "evals/backends/engine_backend.h"

namespace v4b::evals {

class EngineRuns {
 public:
  explicit EngineRuns(uint64_t seed) : seed_(seed) {}

  const ModelConfig& config(const std::string& model);
  // The session of (model, options with bf16_activations set) advanced to exactly `depth` tokens (reset first if it is past);
  // `filled`, when given, receives how many tokens this call prefilled.
  Session& at_depth(const std::string& model, const SessionOptions& o, int64_t depth, int64_t* filled = nullptr);
  // The synthetic token at position p: a pure function of (seed, p), so any path to a depth agrees.
  int32_t token_at(const std::string& model, int64_t p);
  // The engine backend of `model` (loaded on first use); sessions name their own numerics.
  EngineBackend& backend(const std::string& model);

 private:
  uint64_t seed_;
  std::map<std::string, std::unique_ptr<EngineBackend>> backends_;
  std::map<std::tuple<std::string, int, int, int>, std::unique_ptr<Session>> sessions_;
  std::map<std::string, ModelConfig> configs_;
};

}  // namespace v4b::evals
