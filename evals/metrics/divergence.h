// How far a candidate's next-token distributions are from a base's, position by position
// (the measurement llama.cpp's perplexity tool made common for quantisation, kept here in O(vocab)
// memory per position): KL(base || candidate), top-1 agreement, and Δp, the change in the
// probability of the base's most likely token.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace v4b::evals {

struct PositionDivergence {
  double kl = 0;          // sum_v p_base(v) * (log p_base(v) - log p_cand(v)), in nats
  bool top1_agree = true;  // argmax of both (first index on ties)
  double dp = 0;           // p_cand(t) - p_base(t), t = argmax of the base
};

// Both rows are raw logits over the same vocabulary; softmax in double precision.
PositionDivergence compare_position(std::span<const float> base_logits, std::span<const float> cand_logits);

// Accumulates positions and summarises them; positions are also grouped into bins of `bin_width`
// so drift with context is visible.
class DivergenceStats {
 public:
  explicit DivergenceStats(int64_t bin_width) : bin_width_(bin_width) {}
  void add(int64_t position, const PositionDivergence& d);

  int64_t count() const { return static_cast<int64_t>(kl_.size()); }
  // Named summary values: kld_mean, kld_stderr, kld_max, kld_p99_9 ... kld_p1, top1_agreement,
  // top1_stderr, dp_mean, dp_rms, dp_p99 ... dp_p1, positions.
  std::vector<std::pair<std::string, double>> summary() const;

  struct Bin {
    int64_t first = 0, last = 0, count = 0;  // positions [first, last]
    double kld_mean = 0, top1_agreement = 0, dp_mean = 0;
  };
  std::vector<Bin> bins() const;

 private:
  int64_t bin_width_;
  std::vector<int64_t> pos_;
  std::vector<double> kl_, dp_;
  std::vector<bool> agree_;
};

}  // namespace v4b::evals
