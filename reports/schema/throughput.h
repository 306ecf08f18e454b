// Metric names of a `throughput` case (evals/suites/throughput writes them, reports/render/views
// reads them). Also <ttft|tpot|itl|e2el>_ms_<mean|median|std|p90|p99> and cost_ratio_<price>.
#pragma once

namespace v4b::schema::throughput {
inline constexpr const char* kCompleted = "completed";
inline constexpr const char* kFailed = "failed";
inline constexpr const char* kDuration = "duration_s";
inline constexpr const char* kRequestThroughput = "request_throughput";
inline constexpr const char* kOutputTokPerS = "output_tok_per_s";
inline constexpr const char* kTotalTokPerS = "total_tok_per_s";
inline constexpr const char* kTotalInputTokens = "total_input_tokens";
inline constexpr const char* kTotalOutputTokens = "total_output_tokens";
inline constexpr const char* kConcurrencyAvg = "concurrency_avg";
inline constexpr const char* kRequestGoodput = "request_goodput";
inline constexpr const char* kSloAttainment = "slo_attainment";
inline constexpr const char* kUsdPer1mOutput = "usd_per_1m_output_tokens";
inline constexpr const char* kUsdPer1mInput = "usd_per_1m_input_tokens";
inline constexpr const char* kUsdPer1mTotal = "usd_per_1m_total_tokens";
inline constexpr const char* kCostRatioPrefix = "cost_ratio_";
}  // namespace v4b::schema::throughput
