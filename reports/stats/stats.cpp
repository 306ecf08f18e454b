#include "reports/stats/stats.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/hashing.h"

namespace v4b::stats {

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double at = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(at)), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (at - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

double mcnemar_exact_p(int64_t b, int64_t c) {
  const int64_t n = b + c, k = std::min(b, c);
  if (n == 0) return 1.0;
  // P[X <= k] for X ~ Binom(n, 1/2), summed in log space so large n stays finite.
  double tail = 0;
  for (int64_t i = 0; i <= k; ++i)
    tail += std::exp(std::lgamma(double(n) + 1) - std::lgamma(double(i) + 1) - std::lgamma(double(n - i) + 1) - double(n) * std::log(2.0));
  return std::min(1.0, 2 * tail);
}

BootstrapCi bootstrap_mean(const std::vector<double>& diffs, uint64_t seed, int reps, double level) {
  BootstrapCi r;
  if (diffs.empty()) return r;
  const size_t n = diffs.size();
  double sum = 0;
  for (double d : diffs) sum += d;
  r.mean = sum / double(n);
  SplitMix64 rng{seed};
  auto next = [&rng] { return rng.next(); };
  std::vector<double> means(reps);
  int le0 = 0, ge0 = 0;
  for (int b = 0; b < reps; ++b) {
    double t = 0;
    for (size_t i = 0; i < n; ++i) t += diffs[next() % n];
    means[b] = t / double(n);
    le0 += means[b] <= 0;
    ge0 += means[b] >= 0;
  }
  std::sort(means.begin(), means.end());
  r.lo = percentile(means, 100 * (1 - level) / 2);
  r.hi = percentile(means, 100 * (1 - (1 - level) / 2));
  r.p_two_sided = std::min(1.0, 2.0 * std::min(le0, ge0) / reps);
  return r;
}

MannWhitney mann_whitney(const std::vector<double>& x, const std::vector<double>& y) {
  MannWhitney r;
  const double n1 = double(x.size()), n2 = double(y.size());
  if (x.empty() || y.empty()) return r;
  // Ranks of the pooled sample (average ranks for ties) give U = R1 - n1 (n1 + 1) / 2.
  std::vector<std::pair<double, int>> all;
  for (double v : x) all.push_back({v, 0});
  for (double v : y) all.push_back({v, 1});
  std::sort(all.begin(), all.end());
  double r1 = 0, tie_term = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double rank = (double(i) + 1 + double(j)) / 2, t = double(j - i);
    for (size_t k = i; k < j; ++k)
      if (all[k].second == 0) r1 += rank;
    tie_term += t * t * t - t;
    i = j;
  }
  r.u = r1 - n1 * (n1 + 1) / 2;
  const double n = n1 + n2, mu = n1 * n2 / 2;
  const double var = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)));
  if (var <= 0) return r;  // every value tied: no evidence either way
  const double diff = r.u - mu;
  r.z = (std::fabs(diff) - 0.5) / std::sqrt(var) * (diff < 0 ? -1 : 1);
  if (std::fabs(diff) < 0.5) r.z = 0;
  r.p_two_sided = std::min(1.0, std::erfc(std::fabs(r.z) / std::sqrt(2.0)));
  return r;
}

int64_t effective_length(const std::map<int64_t, double>& score_by_length, double threshold) {
  int64_t best = 0;
  for (const auto& [len, score] : score_by_length)
    if (score > threshold) best = std::max(best, len);
  return best;
}

}  // namespace v4b::stats
