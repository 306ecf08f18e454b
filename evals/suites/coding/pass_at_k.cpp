#include "evals/suites/coding/pass_at_k.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "reports/stats/stats.h"

namespace v4b::evals::coding {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n)
    throw std::invalid_argument(fmt::format("pass@k needs 0 <= c <= n and 1 <= k <= n (n={}, c={}, k={})", n, c, k));
  if (n - c < k) return 1.0;  // every k-subset holds a passing sample
  double fail_all = 1.0;     // C(n-c, k) / C(n, k) as a product, stable for large n
  for (int64_t i = n - c + 1; i <= n; ++i) fail_all *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - fail_all;
}

PassAtK mean_pass_at_k(const std::vector<ProblemCount>& problems, int64_t k, uint64_t seed, int resamples) {
  PassAtK out;
  if (problems.empty()) return out;
  std::vector<double> per(problems.size());
  for (size_t i = 0; i < problems.size(); ++i) per[i] = pass_at_k(problems[i].n, problems[i].c, k);
  const stats::BootstrapCi ci = stats::bootstrap_mean(per, seed, std::max(resamples, 1));
  out.value = ci.mean;
  out.ci_lo = ci.lo;
  out.ci_hi = ci.hi;
  return out;
}

}  // namespace v4b::evals::coding
