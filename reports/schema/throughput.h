// Metric names of a `throughput` case (evals/suites/throughput writes them, reports/render/views
// reads them): vLLM's `bench serve` names, so scripts written for its output read ours. Also
// <mean|median|std|p90|p99>_<ttft|tpot|itl|e2el>_ms (latency_metric) and cost_ratio_<price>. Runs
// stored before the rename used duration_s, output_tok_per_s, total_tok_per_s and
// <ttft|...>_ms_<stat>; the throughput view reads those too.
#pragma once

#include <string>
#include <string_view>

namespace v4b::schema::throughput {
inline constexpr const char* kCompleted = "completed";
inline constexpr const char* kFailed = "failed";
inline constexpr const char* kDuration = "duration";  // seconds
inline constexpr const char* kRequestThroughput = "request_throughput";
inline constexpr const char* kOutputThroughput = "output_throughput";          // output tokens per second
inline constexpr const char* kTotalTokenThroughput = "total_token_throughput";  // input + output tokens per second
inline constexpr const char* kTotalInputTokens = "total_input_tokens";
inline constexpr const char* kTotalOutputTokens = "total_output_tokens";
inline constexpr const char* kConcurrencyAvg = "concurrency_avg";
inline constexpr const char* kRequestGoodput = "request_goodput";
inline constexpr const char* kSloAttainment = "slo_attainment";
inline constexpr const char* kUsdPer1mOutput = "usd_per_1m_output_tokens";
inline constexpr const char* kUsdPer1mInput = "usd_per_1m_input_tokens";
inline constexpr const char* kUsdPer1mTotal = "usd_per_1m_total_tokens";
inline constexpr const char* kCostRatioPrefix = "cost_ratio_";

// "median_ttft_ms": a latency statistic (mean, median, std, p90, p99) of ttft, tpot, itl or e2el.
inline std::string latency_metric(std::string_view stat, std::string_view what) {
  return std::string(stat) + "_" + std::string(what) + "_ms";
}
}  // namespace v4b::schema::throughput
