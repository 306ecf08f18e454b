#include "evals/backends/http_client.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

namespace v4b::evals {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// One try's result: what the retry loop needs to decide, and what to say if it gives up.
struct Outcome {
  bool ok = false;
  bool retryable = false;        // connection error, 429 or 5xx
  int status = 0;                // 0: no HTTP answer
  std::string message;
  std::optional<double> retry_after;
};

bool retryable_status(int status) { return status == 429 || status >= 500; }

std::string error_excerpt(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    const json& e = j["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>().substr(0, 500);
    if (e.is_string()) return e.get<std::string>().substr(0, 500);
  }
  return body.substr(0, 300);
}

// The wait before retry number `retry` (1-based): Retry-After when the server named one (at most a
// minute), else backoff * 2^(retry-1), jittered by +-50% so many clients do not retry in step.
double retry_delay(const HttpOptions& o, int retry, std::optional<double> retry_after) {
  if (retry_after) return std::min(*retry_after, 60.0);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const double base = std::min(30.0, o.backoff_s * std::ldexp(1.0, retry - 1));
  return base * std::uniform_real_distribution<double>(0.5, 1.5)(rng);
}

void configure(httplib::Client& cli, const HttpOptions& o) {
  const auto us = [](double s) { return std::chrono::microseconds(static_cast<int64_t>(s * 1e6)); };
  cli.set_connection_timeout(us(o.connect_timeout_s));
  cli.set_read_timeout(us(o.timeout_s));
  cli.set_write_timeout(us(o.timeout_s));
  cli.set_tcp_nodelay(true);
}

httplib::Headers headers_for(const HttpOptions& o) {
  httplib::Headers h{{"Accept-Encoding", "identity"}};
  if (!o.api_key.empty()) h.emplace("Authorization", "Bearer " + o.api_key);
  return h;
}

Outcome http_failure(const std::string& where, const httplib::Response& res) {
  Outcome out;
  out.status = res.status;
  out.retryable = retryable_status(res.status);
  out.message = fmt::format("{} answered HTTP {}: {}", where, res.status, error_excerpt(res.body));
  if (res.has_header("Retry-After")) out.retry_after = parse_retry_after(res.get_header_value("Retry-After"));
  return out;
}

// Calls `attempt` until it succeeds, fails for good, or the retries are spent; throws HttpError then.
template <class Attempt>
void retry_loop(const HttpOptions& o, std::counting_semaphore<>& slots, Attempt&& attempt) {
  Outcome last;
  int tries = 0;
  for (int retry = 0; retry <= o.max_retries; ++retry) {
    if (retry > 0) std::this_thread::sleep_for(std::chrono::duration<double>(retry_delay(o, retry, last.retry_after)));
    slots.acquire();
    try {
      last = attempt();
    } catch (...) {
      slots.release();
      throw;
    }
    slots.release();
    ++tries;
    if (last.ok) return;
    if (!last.retryable) break;
  }
  throw HttpError(tries > 1 ? fmt::format("{} (after {} tries)", last.message, tries) : last.message, last.status, tries);
}

}  // namespace

std::optional<double> parse_retry_after(const std::string& value) {
  size_t used = 0;
  try {
    const double s = std::stod(value, &used);
    if (used == value.size() && s >= 0 && std::isfinite(s)) return s;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

HttpClient::HttpClient(HttpOptions o) : o_(std::move(o)), url_(parse_base_url(o_.base_url)), slots_(std::max(1, o_.max_concurrency)) {}

HttpClient::~HttpClient() = default;

json HttpClient::post(const std::string& path, const json& body) { return *send_json(path, body, /*missing_ok=*/false); }

std::optional<json> HttpClient::post_if_served(const std::string& path, const json& body) { return send_json(path, body, /*missing_ok=*/true); }

std::optional<json> HttpClient::send_json(const std::string& path, const json& body, bool missing_ok) {
  const std::string where = url_.origin + path, payload = body.dump();
  json reply;
  bool missing = false;
  retry_loop(o_, slots_, [&] {
    httplib::Client cli(url_.origin);
    configure(cli, o_);
    const auto res = cli.Post(path, headers_for(o_), payload, "application/json");
    if (!res) return Outcome{false, true, 0, fmt::format("cannot reach {}: {}", where, httplib::to_string(res.error())), {}};
    if (missing_ok && (res->status == 404 || res->status == 405)) {
      missing = true;
      return Outcome{true, false, res->status, "", {}};
    }
    if (res->status < 200 || res->status >= 300) return http_failure(where, *res);  // with the server's own words
    reply = json::parse(res->body, nullptr, false);
    if (reply.is_discarded()) return Outcome{false, false, res->status, fmt::format("{} answered something that is not JSON: {}", where, res->body.substr(0, 300)), {}};
    return Outcome{true, false, res->status, "", {}};
  });
  if (missing) return std::nullopt;
  return reply;
}

HttpClient::StreamEnd HttpClient::stream(const std::string& path, const json& body, const EventSink& on_event, Clock::time_point* sent_at) {
  const std::string where = url_.origin + path;
  json with_stream = body;
  with_stream["stream"] = true;
  const std::string payload = with_stream.dump();
  StreamEnd end;
  bool delivered = false;
  retry_loop(o_, slots_, [&] {
    httplib::Client cli(url_.origin);
    configure(cli, o_);
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.headers = headers_for(o_);
    req.headers.emplace("Accept", "text/event-stream");
    req.set_header("Content-Type", "application/json");
    req.body = payload;
    int status = 0;
    std::string buf, raw, stream_error;
    end.done = false;
    req.response_handler = [&](const httplib::Response& res) {
      status = res.status;
      return true;
    };
    // Every event completed by this read is stamped with the read's time, as vLLM's client does.
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      const auto now = Clock::now();
      if (status != 200) {
        raw.append(data, n);
        return true;
      }
      buf.append(data, n);
      for (size_t cut; (cut = buf.find("\n\n")) != std::string::npos;) {
        const std::string event = buf.substr(0, cut);
        buf.erase(0, cut + 2);
        for (size_t pos = 0; pos < event.size();) {
          size_t eol = event.find('\n', pos);
          if (eol == std::string::npos) eol = event.size();
          std::string line = event.substr(pos, eol - pos);
          pos = eol + 1;
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (!line.starts_with("data:")) continue;
          std::string data_line = line.substr(5);
          if (!data_line.empty() && data_line.front() == ' ') data_line.erase(0, 1);
          if (data_line == "[DONE]") {
            end.done = true;
            continue;
          }
          const json j = json::parse(data_line, nullptr, false);
          if (j.is_discarded()) continue;
          if (j.contains("error")) {
            stream_error = j["error"].is_object() ? j["error"].value("message", "error") : j["error"].dump();
            return false;
          }
          delivered = true;
          on_event(j, now);
        }
      }
      return true;
    };
    const auto sent = Clock::now();  // immediately before the POST, where vLLM's clock starts
    if (sent_at) *sent_at = sent;
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    const bool ok = cli.send(req, res, err);
    if (!stream_error.empty()) return Outcome{false, false, status, fmt::format("{}: stream error: {}", where, stream_error), {}};
    if (!ok) return Outcome{false, !delivered, 0, fmt::format("{}: {}", where, httplib::to_string(err)), {}};
    if (status != 200) {
      res.body = raw;
      return http_failure(where, res);
    }
    return Outcome{true, false, status, "", {}};
  });
  return end;
}

}  // namespace v4b::evals
