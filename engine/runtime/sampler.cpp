#include "engine/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "common/hashing.h"

namespace v4b {

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) throw std::invalid_argument("sample: no logits");
  if (o_.temperature <= 0)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  if (o_.top_k > 0 && static_cast<size_t>(o_.top_k) < ids.size()) ids.resize(o_.top_k);
  std::vector<double> p(ids.size());
  const double mx = logits[ids[0]];
  double sum = 0;
  for (size_t i = 0; i < ids.size(); ++i) sum += p[i] = std::exp((logits[ids[i]] - mx) / o_.temperature);
  size_t keep = ids.size();
  if (o_.top_p < 1.0) {
    double mass = 0;
    for (keep = 0; keep < ids.size();) {
      mass += p[keep++] / sum;
      if (mass >= o_.top_p) break;
    }
  }
  const double total = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (size_t i = 0; i < keep; ++i)
    if ((r -= p[i]) <= 0) return ids[i];
  return ids[keep - 1];
}

uint64_t logits_hash(std::span<const float> logits) {
  uint64_t h = kFnv1aOffset;
  for (float v : logits) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    h = fnv1a_u32(bits, h);
  }
  return h;
}

}  // namespace v4b
