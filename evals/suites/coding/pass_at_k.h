// pass@k by the unbiased estimator of Chen et al. 2021 (spec harness-anchors §3.3), and its mean
// over problems with a bootstrap confidence interval.
#pragma once

#include <cstdint>
#include <vector>

namespace v4b::evals::coding {

// 1 - C(n-c, k) / C(n, k) for one problem with n samples of which c pass; needs 0 <= c <= n and
// 1 <= k <= n (throws std::invalid_argument otherwise). Computed as 1 - prod_{i=n-c+1..n} (1 - k/i).
double pass_at_k(int64_t n, int64_t c, int64_t k);

struct ProblemCount {
  int64_t n = 0, c = 0;  // samples, passing samples
};

struct PassAtK {
  double value = 0;           // mean over problems
  double ci_lo = 0, ci_hi = 0;  // 95% percentile bootstrap over problems
};

// The mean pass@k over problems; every problem needs n >= k. The interval resamples problems with
// replacement `resamples` times from `seed`.
PassAtK mean_pass_at_k(const std::vector<ProblemCount>& problems, int64_t k, uint64_t seed, int resamples = 1000);

}  // namespace v4b::evals::coding
