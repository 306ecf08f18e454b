// Serving metrics with vLLM's definitions (`vllm bench serve`; ../shared/spec/harness-anchors.md §3.6):
//   TTFT  first message carrying a choices entry − request start
//   ITL   time between consecutive token-carrying messages, one sample per message, pooled
//   E2EL  last token-carrying message − start (a trailing usage-only message does not count)
//   TPOT  (E2EL − TTFT) / (output_tokens − 1), requests with more than one output token
//   throughputs over the benchmark's wall duration; goodput (DistServe) = requests meeting every
//   SLO / duration, TPOT taken as 0 for a request with at most one output token.
// Statistics: mean, median, population std, p90, p99 (numpy's linear interpolation); failed
// requests are left out of the latency statistics and counted separately; empty lists give 0.
// `concurrency_avg` (Σ E2EL / duration) is SGLang's definition, named as such.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reports/store/store.h"

namespace v4b::evals {

struct RequestRecord {
  bool ok = false;
  std::string error;
  double start_s = 0;  // since the benchmark started
  double ttft_s = 0, e2el_s = 0;
  std::vector<double> itl_s;  // one per token-carrying message after the first
  int64_t input_tokens = 0, output_tokens = 0;
  int64_t client_input_tokens = 0;  // what the load generator counted
  int64_t chunks = 0;               // token-carrying messages
  std::string output_tokens_from;   // "usage", "tokenizer", "chunks" or "one" (vLLM's fallbacks)

  double tpot_s() const { return output_tokens > 1 ? (e2el_s - ttft_s) / static_cast<double>(output_tokens - 1) : 0; }
};

// Service-level objectives in milliseconds; unset ones are not checked.
struct Slo {
  std::optional<double> ttft_ms, tpot_ms, e2el_ms;
  bool empty() const { return !ttft_ms && !tpot_ms && !e2el_ms; }
};
// "ttft:500,tpot:100,e2el:2000" (vLLM's --goodput, comma-separated). UsageError naming a bad entry.
Slo parse_slo(const std::string& text);

bool meets_slo(const RequestRecord& r, const Slo& slo);

// The metrics of one load case (reports/schema/throughput.h): completed, failed, duration,
// total_input_tokens, total_output_tokens, request_throughput, output_throughput, total_token_throughput, concurrency_avg,
// {ttft,tpot,itl,e2el}_ms_{mean,median,std,p90,p99}, and with an SLO request_goodput and
// slo_attainment (fraction of completed requests meeting it).
std::vector<store::Metric> serving_metrics(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo);

// The per-request record stored as a sample.
nlohmann::json record_json(const RequestRecord& r);

}  // namespace v4b::evals
