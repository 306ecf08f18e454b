// The one HTTP client of v4bench: JSON POSTs and server-sent-event streams to an OpenAI-compatible
// server (http or https), with an optional bearer key, timeouts, bounded concurrency, and retries
// with exponential backoff and jitter on connection errors, 429 and 5xx, honouring Retry-After.
// Every suite that talks to a server reaches it through the http backend built on this class.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <semaphore>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "evals/backends/base_url.h"

namespace v4b::evals {

struct HttpOptions {
  std::string base_url;            // http(s)://host[:port][/prefix]
  std::string api_key;             // sent as "Authorization: Bearer"; empty: none
  double connect_timeout_s = 10;
  double timeout_s = 600;          // per read and write
  int max_retries = 4;             // further tries after the first
  double backoff_s = 0.5;          // wait before the first retry; doubles each time, jittered by +-50%, at most 30 s
  int max_concurrency = 64;        // requests in flight at once through one client
};

// A request that failed for good: the last status (0 when the server was never reached), the tries
// made and a message naming the URL and what the server said.
class HttpError : public std::runtime_error {
 public:
  HttpError(const std::string& what, int status, int attempts) : std::runtime_error(what), status_(status), attempts_(attempts) {}
  int status() const { return status_; }
  int attempts() const { return attempts_; }

 private:
  int status_, attempts_;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions o);  // UsageError for a base URL that is not http(s)://host[:port][/path]
  ~HttpClient();

  // POSTs `body` to `path` (appended to the base URL's origin as given) and returns the parsed
  // reply. Throws HttpError after the last try, or at once for a status that retrying cannot help
  // (a 404 included: vLLM answers it for an unknown model, in words the message keeps).
  nlohmann::json post(const std::string& path, const nlohmann::json& body);
  // As post(), but a 404 or 405 (the server has no such endpoint) returns nullopt.
  std::optional<nlohmann::json> post_if_served(const std::string& path, const nlohmann::json& body);

  // POSTs `body` and hands each server-sent event's JSON payload to `on_event` with the time its
  // read completed; returns once the stream ends ([DONE] or the connection closes). `*sent_at`
  // receives the time of the POST that was answered. Retries only while no event has been handed
  // on; throws HttpError as post() does, and for an "error" event in the stream.
  using EventSink = std::function<void(const nlohmann::json& event, std::chrono::steady_clock::time_point received)>;
  struct StreamEnd {
    bool done = false;  // the stream ended with [DONE]
    int attempts = 1;
  };
  StreamEnd stream(const std::string& path, const nlohmann::json& body, const EventSink& on_event,
                   std::chrono::steady_clock::time_point* sent_at);

  const BaseUrl& url() const { return url_; }
  const HttpOptions& options() const { return o_; }

 private:
  std::optional<nlohmann::json> send_json(const std::string& path, const nlohmann::json& body, bool missing_ok);

  HttpOptions o_;
  BaseUrl url_;
  std::counting_semaphore<> slots_;
};

// Seconds a Retry-After header asks for (delta-seconds only; HTTP dates are not honoured), or nullopt.
std::optional<double> parse_retry_after(const std::string& value);

}  // namespace v4b::evals
