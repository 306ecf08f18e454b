// Metric names of a `kld` case (evals/suites/kld and evals/metrics/divergence write them,
// reports/render/views reads them). Also kld_p<q> and dp_p<q> percentiles.
#pragma once

namespace v4b::schema::kld {
inline constexpr const char* kKldMean = "kld_mean";  // KL(base || candidate), nats
inline constexpr const char* kKldStderr = "kld_stderr";
inline constexpr const char* kKldMax = "kld_max";
inline constexpr const char* kKldP99 = "kld_p99";
inline constexpr const char* kTop1Agreement = "top1_agreement";
inline constexpr const char* kTop1Stderr = "top1_stderr";
inline constexpr const char* kDpMean = "dp_mean";  // p_candidate - p_base of the base's top token
inline constexpr const char* kDpRms = "dp_rms";
inline constexpr const char* kPositions = "positions";
inline constexpr const char* kFoldedIds = "folded_ids";
inline constexpr const char* kSeconds = "seconds";
}  // namespace v4b::schema::kld
