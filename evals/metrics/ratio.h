// A figure against its baseline's: what the kv, flops and analyze suites report as *_ratio.
#pragma once

namespace v4b::evals {

// value / baseline, or 0 where the baseline has none (a model without that kind of cache).
inline double ratio(double value, double baseline) { return baseline > 0 ? value / baseline : 0; }

}  // namespace v4b::evals
