// Where the throughput suite sends its requests: any OpenAI-compatible HTTP endpoint (streaming,
// timed at the client as vLLM does), or the embedded engine in process through the same Scheduler
// the server uses, timed by the scheduler at each sampled token (exact per-token timestamps).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/io/tokenizer.h"
#include "evals/backends/scheduler.h"
#include "evals/suites/throughput/serving_metrics.h"

namespace v4b::evals {

struct LoadRequest {
  std::vector<int32_t> ids;  // the engine backend's prompt
  std::string text;          // the HTTP backend's prompt
  int64_t client_input_tokens = 0;
  int64_t max_tokens = 0;
  bool ignore_eos = false;
};

class LoadBackend {
 public:
  virtual ~LoadBackend() = default;
  // Sends one request and times it; called from many threads at once. Never throws: a failure is
  // a record with ok = false and the reason.
  virtual RequestRecord send(const LoadRequest& req, Clock::time_point bench_start) = 0;
};

struct HttpTarget {
  std::string base_url;  // http(s)://host:port[/prefix]; a prefix ending in /v1 absorbs the endpoint's /v1
  std::string endpoint = "/v1/completions";  // or /v1/chat/completions
  std::string model, api_key;
  double timeout_s = 600;
};
// UsageError for a URL that is not http(s)://host[:port][/path].
void check_http_target(const HttpTarget& t);
// `tok` re-counts output tokens when a server reports no usage (vLLM's fallback); may be null.
std::unique_ptr<LoadBackend> make_http_backend(HttpTarget target, const Tokenizer* tok);
std::unique_ptr<LoadBackend> make_engine_backend(Scheduler& scheduler);

}  // namespace v4b::evals
