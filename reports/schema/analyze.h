// Metric names of an `analyze` case (evals/suites/analyze writes them, reports/render/views reads them).
#pragma once

namespace v4b::schema::analyze {
inline constexpr const char* kKvBytes = "kv_bytes";
inline constexpr const char* kKvBytesPerToken = "kv_bytes_per_token";
inline constexpr const char* kKvRatio = "kv_ratio";
inline constexpr const char* kKvStateBytes = "kv_state_bytes";
inline constexpr const char* kFlopsRaw = "flops_raw";
inline constexpr const char* kFlopsRawRatio = "flops_raw_ratio";
inline constexpr const char* kFlopsFp8eq = "flops_fp8eq";
inline constexpr const char* kFlopsFp8eqRatio = "flops_fp8eq_ratio";
inline constexpr const char* kParamsTotal = "params_total";
inline constexpr const char* kParamsMtp = "params_mtp";
inline constexpr const char* kParamsActive = "params_active";
inline constexpr const char* kBeyondMaxCtx = "beyond_max_ctx";  // 1: ctx exceeds the model's max_position_embeddings
inline constexpr const char* kBaselineBeyondMaxCtx = "baseline_beyond_max_ctx";
inline constexpr const char* kBaselineKvBytes = "baseline_kv_bytes";
inline constexpr const char* kBaselineFlopsRaw = "baseline_flops_raw";
inline constexpr const char* kBaselineFlopsFp8eq = "baseline_flops_fp8eq";
}  // namespace v4b::schema::analyze
