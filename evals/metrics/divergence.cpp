#include "evals/metrics/divergence.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "reports/stats/stats.h"
#include "reports/schema/kld.h"

namespace v4b::evals {

namespace {

namespace names = schema::kld;

// log-softmax of a logits row into `out`; returns the argmax.
size_t log_softmax(std::span<const float> z, std::vector<double>& out) {
  const size_t top = static_cast<size_t>(std::max_element(z.begin(), z.end()) - z.begin());
  const double mx = z[top];
  double sum = 0;
  for (float v : z) sum += std::exp(double(v) - mx);
  const double lse = mx + std::log(sum);
  out.resize(z.size());
  for (size_t i = 0; i < z.size(); ++i) out[i] = double(z[i]) - lse;
  return top;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

}  // namespace

PositionDivergence compare_position(std::span<const float> base, std::span<const float> cand) {
  if (base.size() != cand.size() || base.empty()) throw std::invalid_argument("compare_position: rows of different widths");
  thread_local std::vector<double> lb, lc;
  const size_t tb = log_softmax(base, lb), tc = log_softmax(cand, lc);
  PositionDivergence d;
  double kl = 0;
  for (size_t i = 0; i < lb.size(); ++i) {
    const double p = std::exp(lb[i]);
    if (p > 0) kl += p * (lb[i] - lc[i]);
  }
  d.kl = std::max(kl, 0.0);  // rounding can leave -1e-17 where the distributions are equal
  d.top1_agree = tb == tc;
  d.dp = std::exp(lc[tb]) - std::exp(lb[tb]);
  return d;
}

void DivergenceStats::add(int64_t position, const PositionDivergence& d) {
  pos_.push_back(position);
  kl_.push_back(d.kl);
  dp_.push_back(d.dp);
  agree_.push_back(d.top1_agree);
}

std::vector<std::pair<std::string, double>> DivergenceStats::summary() const {
  const double n = static_cast<double>(kl_.size());
  std::vector<std::pair<std::string, double>> out;
  const double kmean = mean(kl_);
  double var = 0;
  for (double x : kl_) var += (x - kmean) * (x - kmean);
  var = n > 1 ? var / (n - 1) : 0;
  std::vector<double> ks = kl_, ds = dp_;
  std::sort(ks.begin(), ks.end());
  std::sort(ds.begin(), ds.end());
  out.emplace_back(names::kKldMean, kmean);
  out.emplace_back(names::kKldStderr, n > 0 ? std::sqrt(var / n) : 0);
  out.emplace_back(names::kKldMax, ks.empty() ? 0 : ks.back());
  for (auto [name, q] : {std::pair{"p99_9", 99.9}, {"p99", 99.0}, {"p95", 95.0}, {"p90", 90.0}, {"p50", 50.0}, {"p10", 10.0}, {"p1", 1.0}})
    out.emplace_back(std::string("kld_") + name, stats::percentile(ks, q));
  const double agree = n > 0 ? static_cast<double>(std::count(agree_.begin(), agree_.end(), true)) / n : 0;
  out.emplace_back(names::kTop1Agreement, agree);
  out.emplace_back(names::kTop1Stderr, n > 0 ? std::sqrt(agree * (1 - agree) / n) : 0);
  double sq = 0;
  for (double x : dp_) sq += x * x;
  out.emplace_back(names::kDpMean, mean(dp_));
  out.emplace_back(names::kDpRms, n > 0 ? std::sqrt(sq / n) : 0);
  for (auto [name, q] : {std::pair{"p99", 99.0}, {"p95", 95.0}, {"p50", 50.0}, {"p5", 5.0}, {"p1", 1.0}})
    out.emplace_back(std::string("dp_") + name, stats::percentile(ds, q));
  out.emplace_back(names::kPositions, n);
  return out;
}

std::vector<DivergenceStats::Bin> DivergenceStats::bins() const {
  std::map<int64_t, Bin> by;
  for (size_t i = 0; i < kl_.size(); ++i) {
    Bin& b = by[pos_[i] / bin_width_];
    b.first = pos_[i] / bin_width_ * bin_width_;
    b.last = std::max(b.last, pos_[i]);
    ++b.count;
    b.kld_mean += kl_[i];
    b.top1_agreement += agree_[i] ? 1 : 0;
    b.dp_mean += dp_[i];
  }
  std::vector<Bin> out;
  for (auto& [k, b] : by) {
    b.kld_mean /= b.count;
    b.top1_agreement /= b.count;
    b.dp_mean /= b.count;
    out.push_back(b);
  }
  return out;
}

}  // namespace v4b::evals
