// Next-token choice from logits: greedy, or temperature with top-k / top-p truncation, seeded.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace v4b {

struct SamplerOptions {
  double temperature = 0;  // 0: greedy (argmax, ties to the lower id)
  int64_t top_k = 0;       // 0: no limit
  double top_p = 1.0;      // nucleus mass; 1: no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplerOptions o) : o_(o), rng_(o.seed) {}
  int32_t sample(std::span<const float> logits);

 private:
  SamplerOptions o_;
  std::mt19937_64 rng_;
};

// FNV-1a over the bits of the logits: a compact fingerprint to compare two runs at a glance.
uint64_t logits_hash(std::span<const float> logits);

}  // namespace v4b
