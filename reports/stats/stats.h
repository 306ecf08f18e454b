// The statistics behind `v4bench compare` and the paired recall comparison: small, exact where it
// matters (McNemar on few discordant pairs), seeded where it resamples (bootstrap).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

namespace v4b::stats {

// Linear-interpolation percentile (numpy's default) of sorted values, q in [0, 100]; 0 when empty.
double percentile(const std::vector<double>& sorted, double q);

// Exact two-sided McNemar test: b = pairs right in A only, c = right in B only. Under H0 each
// discordant pair goes either way with probability 1/2, so p = min(1, 2 * P[Binom(b+c, 1/2) <=
// min(b, c)]); 1 when there are no discordant pairs.
double mcnemar_exact_p(int64_t b, int64_t c);

struct BootstrapCi {
  double mean = 0, lo = 0, hi = 0;  // mean of the differences and its percentile interval
  double p_two_sided = 1;           // 2 * min(share of resampled means <= 0, share >= 0), capped at 1
};
// Bootstrap of the mean of `values`: `reps` resamples with replacement from a SplitMix64 stream
// seeded with `seed`, percentile interval at `level` (e.g. 0.95). Paired comparisons pass the
// per-pair differences (candidate - base); pass@k passes the per-problem estimates.
BootstrapCi bootstrap_mean(const std::vector<double>& values, uint64_t seed, int reps = 2000, double level = 0.95);

struct MannWhitney {
  double u = 0;           // U of the first sample: pairs (x, y) with x > y, ties counting 1/2
  double z = 0;           // normal approximation with tie and continuity corrections
  double p_two_sided = 1;
};
// Mann-Whitney U test of two independent samples (e.g. timings over repetitions).
MannWhitney mann_whitney(const std::vector<double>& x, const std::vector<double>& y);

inline constexpr double kEffectiveLengthThreshold = 85.6;  // RULER README: Llama-2-7B at 4K
// RULER's effective length. score_by_length: context length -> mean task score (0-100). The
// largest length whose score exceeds the threshold; 0 when none does.
int64_t effective_length(const std::map<int64_t, double>& score_by_length, double threshold = kEffectiveLengthThreshold);

}  // namespace v4b::stats
