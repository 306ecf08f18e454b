#include "evals/suites/throughput/load_backends.h"


#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/core/errors.h"
#include "evals/backends/base_url.h"

namespace v4b::evals {

namespace {

using nlohmann::json;

double since(Clock::time_point t0, Clock::time_point t) { return std::chrono::duration<double>(t - t0).count(); }

class HttpBackend : public LoadBackend {
 public:
  HttpBackend(HttpTarget t, const Tokenizer* tok) : t_(std::move(t)), tok_(tok), url_(parse_base_url(t_.base_url)) {
    path_ = t_.endpoint;
    if (url_.prefix.ends_with("/v1") && path_.starts_with("/v1/")) path_ = path_.substr(3);
    path_ = url_.prefix + path_;
    chat_ = path_.ends_with("chat/completions");
  }

  RequestRecord send(const LoadRequest& lr, Clock::time_point bench_start) override {
    RequestRecord rec;
    rec.client_input_tokens = lr.client_input_tokens;
    json body = {{"model", t_.model}, {"temperature", 0.0}, {"stream", true}, {"stream_options", {{"include_usage", true}}}};
    if (chat_) {
      body["messages"] = json::array({{{"role", "user"}, {"content", lr.text}}});
      body["max_completion_tokens"] = lr.max_tokens;
    } else {
      body["prompt"] = lr.text;
      body["max_tokens"] = lr.max_tokens;
    }
    if (lr.ignore_eos) body["ignore_eos"] = true;

    httplib::Client cli(url_.origin);
    const auto to = std::chrono::duration<double>(t_.timeout_s);
    cli.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(to));
    cli.set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(to));
    cli.set_tcp_nodelay(true);
    httplib::Request req;
    req.method = "POST";
    req.path = path_;
    req.headers = {{"Accept-Encoding", "identity"}, {"Accept", "text/event-stream"}};
    if (!t_.api_key.empty()) req.headers.emplace("Authorization", "Bearer " + t_.api_key);
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");

    std::string buf, raw, text;
    Clock::time_point start{}, last{};
    bool first = true, done = false;
    int64_t usage_out = -1, usage_in = -1;
    std::string stream_error;
    int status = 0;
    req.response_handler = [&](const httplib::Response& res) {
      status = res.status;
      return true;
    };
    // Every SSE message completed by this read is stamped with the read's time, as vLLM does.
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      const auto now = Clock::now();
      if (status != 200) {
        raw.append(data, n);
        return true;
      }
      buf.append(data, n);
      size_t end;
      while ((end = buf.find("\n\n")) != std::string::npos) {
        const std::string event = buf.substr(0, end);
        buf.erase(0, end + 2);
        for (size_t pos = 0; pos < event.size();) {
          size_t eol = event.find('\n', pos);
          if (eol == std::string::npos) eol = event.size();
          std::string line = event.substr(pos, eol - pos);
          pos = eol + 1;
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (!line.starts_with("data:")) continue;
          std::string payload = line.substr(5);
          if (!payload.empty() && payload.front() == ' ') payload.erase(0, 1);
          if (payload == "[DONE]") {
            done = true;
            continue;
          }
          json j = json::parse(payload, nullptr, false);
          if (j.is_discarded()) continue;
          if (j.contains("error")) stream_error = j["error"].is_object() ? j["error"].value("message", "error") : j["error"].dump();
          if (j.contains("usage") && j["usage"].is_object()) {
            usage_out = j["usage"].value("completion_tokens", int64_t{-1});
            usage_in = j["usage"].value("prompt_tokens", int64_t{-1});
          }
          if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) continue;
          const json& c = j["choices"][0];
          if (chat_) {
            if (c.contains("delta") && c["delta"].contains("content") && c["delta"]["content"].is_string())
              text += c["delta"]["content"].get<std::string>();
          } else if (c.contains("text") && c["text"].is_string()) {
            text += c["text"].get<std::string>();
          }
          if (first) rec.ttft_s = since(start, now);
          else rec.itl_s.push_back(since(last, now));
          first = false;
          last = now;
          ++rec.chunks;
        }
      }
      return true;
    };
    start = Clock::now();  // immediately before the POST, as vLLM's clock starts
    rec.start_s = since(bench_start, start);
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    const bool sent = cli.send(req, res, err);
    if (!sent) {
      rec.error = fmt::format("HTTP request failed: {}", httplib::to_string(err));
      return rec;
    }
    if (status != 200) {
      const json j = json::parse(raw, nullptr, false);
      const std::string msg = !j.is_discarded() && j.contains("error") && j["error"].is_object() ? j["error"].value("message", raw) : raw;
      rec.error = fmt::format("HTTP {}: {}", status, msg.substr(0, 500));
      return rec;
    }
    if (!stream_error.empty()) {
      rec.error = "stream error: " + stream_error;
      return rec;
    }
    if (first) {
      rec.error = "the stream carried no tokens";
      return rec;
    }
    rec.e2el_s = since(start, last);
    if (!done) {
      rec.error = "the stream ended without [DONE]";
      return rec;
    }
    rec.ok = true;
    rec.input_tokens = usage_in >= 0 ? usage_in : lr.client_input_tokens;
    if (usage_out >= 0) {
      rec.output_tokens = usage_out, rec.output_tokens_from = "usage";
    } else if (tok_) {
      rec.output_tokens = static_cast<int64_t>(tok_->encode(text).size()), rec.output_tokens_from = "tokenizer";
    } else {
      rec.output_tokens = 1, rec.output_tokens_from = "one";
    }
    return rec;
  }

 private:
  HttpTarget t_;
  const Tokenizer* tok_;
  BaseUrl url_;
  std::string path_;
  bool chat_ = false;
};

class EngineBackend : public LoadBackend {
 public:
  explicit EngineBackend(Scheduler& s) : s_(s) {}
  RequestRecord send(const LoadRequest& lr, Clock::time_point bench_start) override {
    RequestRecord rec;
    rec.client_input_tokens = rec.input_tokens = static_cast<int64_t>(lr.ids.size());
    GenSpec spec{lr.ids, lr.max_tokens, {}, lr.ignore_eos};  // greedy, as the HTTP backend asks
    auto r = s_.submit(std::move(spec));
    if (!r) {
      rec.error = "the scheduler refused the request (queue full)";
      return rec;
    }
    r->wait_finished();
    rec.start_s = since(bench_start, r->submitted);
    if (r->finish_reason == "error" || r->finish_reason == "abort" || r->tokens.empty()) {
      rec.error = fmt::format("generation ended with '{}': {}", r->finish_reason, r->error);
      return rec;
    }
    rec.ok = true;
    rec.ttft_s = since(r->submitted, r->token_times.front());
    rec.e2el_s = since(r->submitted, r->token_times.back());
    for (size_t i = 1; i < r->token_times.size(); ++i) rec.itl_s.push_back(since(r->token_times[i - 1], r->token_times[i]));
    rec.output_tokens = rec.chunks = static_cast<int64_t>(r->tokens.size());
    rec.output_tokens_from = "engine";
    return rec;
  }

 private:
  Scheduler& s_;
};

}  // namespace

void check_http_target(const HttpTarget& t) { parse_base_url(t.base_url); }

std::unique_ptr<LoadBackend> make_http_backend(HttpTarget target, const Tokenizer* tok) {
  return std::make_unique<HttpBackend>(std::move(target), tok);
}

std::unique_ptr<LoadBackend> make_engine_backend(Scheduler& scheduler) { return std::make_unique<EngineBackend>(scheduler); }

}  // namespace v4b::evals
