#include "evals/suites/coding/pass_at_k.h"

#include <algorithm>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

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
  double sum = 0;
  for (double v : per) sum += v;
  out.value = sum / static_cast<double>(per.size());
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, per.size() - 1);
  std::vector<double> means(static_cast<size_t>(std::max(resamples, 1)));
  for (auto& m : means) {
    double s = 0;
    for (size_t i = 0; i < per.size(); ++i) s += per[pick(rng)];
    m = s / static_cast<double>(per.size());
  }
  std::sort(means.begin(), means.end());
  const auto at = [&](double q) { return means[static_cast<size_t>(q * static_cast<double>(means.size() - 1) + 0.5)]; };
  out.ci_lo = at(0.025);
  out.ci_hi = at(0.975);
  return out;
}

}  // namespace v4b::evals::coding
