// Log-probabilities from a logits row: the chosen token's and the K most likely. What `generate
// --logprobs`, the server's logprobs/echo/top_logprobs and served-model comparisons read.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace v4b::evals {

struct TokenLogprob {
  int32_t id = 0;
  double logprob = 0;
};

struct PositionLogprobs {
  TokenLogprob chosen;             // the token at this position (drawn, or given by the prompt)
  int64_t rank = 0;                // 1 + how many tokens are strictly more likely than it
  std::vector<TokenLogprob> top;   // the k most likely, descending (ties: lower id first)
};

// log softmax of `row` at `chosen` and at its k most likely tokens, in double precision. chosen
// may be -1 (nothing drawn): its entry is then the most likely token's.
PositionLogprobs logprobs_at(std::span<const float> row, int32_t chosen, int64_t k);

}  // namespace v4b::evals
