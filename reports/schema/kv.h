// Metric names of a `kv` case (evals/suites/kv writes them, reports/render/views reads them).
// Also per KV kind: kv_bytes_<kind> and kv_bytes_<kind>_analytic (kind: window, compressed_csa, ...).
#pragma once

namespace v4b::schema::kv {
inline constexpr const char* kKvBytes = "kv_bytes";                   // bytes the caches hold at ctx
inline constexpr const char* kKvBytesAnalytic = "kv_bytes_analytic";  // the cost model's figure
inline constexpr const char* kKvBytesPerToken = "kv_bytes_per_token";
inline constexpr const char* kKvRatio = "kv_ratio";  // kv_bytes / the baseline's analytic bytes
inline constexpr const char* kKvStateBytes = "kv_state_bytes";  // compressor state, not cache
inline constexpr const char* kProjected = "projected";  // 1: analytic only (the engine cannot run the model here)
inline constexpr const char* kFillSeconds = "fill_s";
inline constexpr const char* kFillTokPerS = "fill_tok_per_s";
}  // namespace v4b::schema::kv
