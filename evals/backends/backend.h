// How every suite reaches a model: generate (text or token ids in; ids, text, per-token times,
// usage and finish reason out), score (logits along a given continuation), the model's tokens, what
// the backend can vary, and what a run records about it. Two implementations: the embedded engine
// on the continuous-batching scheduler (engine_backend.h) and one OpenAI-compatible HTTP client
// (http_backend.cpp). make_backend() is the one place that picks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/runtime/engine.h"
#include "engine/runtime/sampler.h"
#include "evals/backends/scheduler.h"
#include "evals/backends/token_codec.h"

namespace v4b::evals {

// What an engine session varies on the same weights; a server serves what it was started with.
struct Variant {
  AttentionMode attention = AttentionMode::kNative;
  KvFormat kv_format = KvFormat::kBf16;
  Numerics numerics = Numerics::kModelDefault;  // kModelDefault: the backend's; generation runs the backend's only
};

struct GenerateRequest {
  std::vector<int32_t> prompt_ids;  // the engine's prompt (BOS included); the http backend sends these when prompt_text is empty
  std::string prompt_text;          // the http backend's prompt (the server tokenizes it)
  bool chat = false;                // http: one user message to /chat/completions (the server applies the template)
  int64_t max_tokens = 16;
  SamplerOptions sampling;          // temperature 0: greedy; seed per request
  std::vector<std::string> stop;    // stop strings (the server's, or checked here on the engine)
  // Ends generation as soon as it returns true for the text so far (checked after every token on
  // the engine; on a streamed answer after every chunk); the text is kept up to that point.
  std::function<bool(const std::string& text)> done;
  bool ignore_eos = false;
  bool stream = false;              // http: server-sent events, timed per chunk at the client
  Variant variant;                  // engine only
  // Engine only: teacher-forced scoring of these tokens after the prompt (the generation itself
  // continues from the prompt). See Generation::scored.
  std::vector<int32_t> score;
  LogitsTap tap;                    // engine only: the logits as they are produced (scheduler.h)
};

struct Generation {
  std::string error;                   // non-empty: the request failed (the rest is what arrived)
  std::vector<int32_t> ids;            // engine only
  std::string text;
  std::string finish_reason;           // "stop", "length" (or the server's word)
  std::chrono::steady_clock::time_point sent;  // when the request was sent (the clock TTFT starts on)
  double ttft_s = 0, e2e_s = 0;        // first token, last token since `sent`
  std::vector<double> itl_s;           // gaps between tokens (engine) or chunks (http stream)
  int64_t chunks = 0;                  // tokens (engine) or stream chunks with text (http)
  int64_t prompt_tokens = -1, completion_tokens = -1;  // -1: unknown (a server without usage)
  std::vector<std::vector<float>> scored;  // row i: the logits before GenerateRequest::score[i]
  OpCount decode_work;                     // engine only: this request's share of the decode steps
  KvBytes kv_bytes;                        // engine only: the KV cache it held at the end
  bool ok() const { return error.empty(); }
};

struct Capabilities {
  bool logits = false;                      // score() and GenerateRequest::score work
  std::vector<AttentionMode> attention;     // variants it can run (a server: the one it serves)
  std::vector<KvFormat> kv_formats;
  std::string numerics;                     // "fp32" | "official" on the engine; "" (the server's own)
  int64_t vocab = 0;                        // 0: unknown
  int64_t max_context = 0;                  // 0: unknown
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string kind() const = 0;  // "engine" | "http"
  // Safe to call from many threads at once; never throws for a failed request (Generation::error).
  virtual Generation generate(const GenerateRequest& req) = 0;
  // The logits after each of `tokens`, continuing a fresh timeline; UsageError where not served.
  virtual std::vector<std::vector<float>> score(std::span<const int32_t> tokens, const Variant& v) = 0;
  virtual const TokenCodec& tokens() const = 0;
  virtual Capabilities capabilities() const = 0;
  // What a run records: model, where it ran (checkpoint or URL), tokenizer, numerics.
  virtual nlohmann::json identity() const = 0;
};

struct BackendSpec {
  std::string kind = "engine";  // engine | http
  std::string model;            // a preset or checkpoint (engine); the served model id (http)
  uint64_t seed = 0;            // engine: the synthetic preset's weights
  std::string numerics;         // engine: "" (the model's default), "fp32" or "official"
  bool fold_ids = false;        // engine: fold token ids into a synthetic preset's smaller vocabulary
  int max_active = 16;          // engine: requests decoded together
  int64_t prefill_chunk = 2048;  // engine: prompt tokens per scheduler step (all requests together)
  int threads = 0;              // engine: compute threads (0: all cores)
  bool bf16_activations = false;  // engine: BF16-rounded GEMM activations (implied by official numerics)
  std::string base_url, api_key;  // http; the key is never stored
  double timeout_s = 600;
  int max_retries = 4;
  double backoff_s = 0.5;
  // The tokenizer.json (a file or a checkpoint directory) to size prompts with; "" for the engine's
  // checkpoint or the server's /tokenize (DeepSeek's when the server has none).
  std::string tokenizer;
};

// UsageError for what the user got wrong (unknown kind, a model without weights, a bad URL);
// HttpError when the server cannot be reached.
std::unique_ptr<Backend> make_backend(const BackendSpec& spec);
// Returns when make_backend builds `kind` or it is one of a suite's own `others` (coding's oracle
// and file sources); else a UsageError listing them all. What parameter validation calls.
void require_backend_kind(const std::string& kind, const std::vector<std::string>& others = {});
// The http backend alone (http_backend.cpp); its key, when the spec has none, from
// $V4BENCH_API_KEY or $OPENAI_API_KEY.
std::unique_ptr<Backend> make_http_backend(const BackendSpec& spec);

// The OpenAI path of an endpoint under a base URL: ".../v1" + "/completions", or "/v1/completions"
// added to a base URL without /v1.
std::string openai_path(const std::string& base_prefix, const std::string& endpoint);

}  // namespace v4b::evals
