// An OpenAI-compatible HTTP server on the embedded engine (cpp-httplib):
//   GET  /health, /v1/models
//   POST /v1/completions, /v1/chat/completions (stream: SSE, usage in a final chunk when
//        stream_options.include_usage), /tokenize, /detokenize
// Generation runs on a Scheduler (evals/backends/scheduler.h); each HTTP worker thread only
// parses, waits and writes. Errors use OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/io/tokenizer.h"
#include "engine/runtime/engine.h"
#include "evals/backends/scheduler.h"

namespace httplib {
class Server;
}

namespace v4b::evals {

struct ServerOptions {
  std::string model_name;        // the id clients must send as "model"
  int64_t max_model_len = 0;     // prompt + completion tokens; 0: the model's maximum position
  int64_t default_max_tokens = 256;  // chat requests without max_tokens (completions default to 16, as OpenAI's)
  int http_threads = 128;        // connections served at once; more wait for a free thread
  std::string api_key;           // non-empty: requests need "Authorization: Bearer KEY"
  std::chrono::milliseconds drain_timeout{10000};  // on shutdown, how long running requests may finish
};

class OpenAiServer {
 public:
  OpenAiServer(const Engine& engine, Tokenizer tokenizer, SchedulerOptions sched, ServerOptions opts);
  ~OpenAiServer();
  OpenAiServer(const OpenAiServer&) = delete;
  OpenAiServer& operator=(const OpenAiServer&) = delete;

  // Binds host:port (0 = any free port) and returns the port; UsageError when it cannot.
  int bind(const std::string& host, int port);
  // Serves until shutdown(); returns after in-flight requests are answered.
  void run();
  // Stops accepting, lets running requests finish for drain_timeout, aborts the rest, stops run().
  // Thread-safe and idempotent.
  void shutdown();

  int64_t max_model_len() const { return max_len_; }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int64_t max_len_ = 0;
};

}  // namespace v4b::evals
