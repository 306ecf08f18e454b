#include "evals/backends/logprobs.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace v4b::evals {

PositionLogprobs logprobs_at(std::span<const float> row, int32_t chosen, int64_t k) {
  PositionLogprobs out;
  if (row.empty()) return out;
  const double mx = *std::max_element(row.begin(), row.end());
  double sum = 0;
  for (float v : row) sum += std::exp(double(v) - mx);
  const double lse = mx + std::log(sum);
  std::vector<int32_t> ids(row.size());
  std::iota(ids.begin(), ids.end(), 0);
  const auto better = [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
  const auto kk = std::min<size_t>(static_cast<size_t>(std::max<int64_t>(k, 1)), ids.size());
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(kk), ids.end(), better);
  if (chosen < 0) chosen = ids[0];
  out.chosen = {chosen, double(row[chosen]) - lse};
  out.rank = 1 + std::count_if(row.begin(), row.end(), [&](float v) { return v > row[chosen]; });
  for (size_t i = 0; i < static_cast<size_t>(std::max<int64_t>(k, 0)) && i < kk; ++i) out.top.push_back({ids[i], double(row[ids[i]]) - lse});
  return out;
}

}  // namespace v4b::evals
