// The http backend: OpenAI-compatible /completions and /chat/completions through HttpClient,
// streamed or not, with the served model's tokens from its /tokenize (or a named tokenizer.json).
#include <chrono>
#include <cstdlib>
#include <mutex>

#include <fmt/format.h>

#include "common/errors.h"
#include "evals/backends/backend.h"
#include "evals/backends/http_client.h"

namespace v4b::evals {

namespace {

using nlohmann::json;

class HttpBackend : public Backend {
 public:
  explicit HttpBackend(const BackendSpec& spec)
      : spec_(spec), client_(HttpOptions{spec.base_url, spec.api_key, 10, spec.timeout_s, spec.max_retries, spec.backoff_s, 64}) {
    if (spec.model.empty()) throw UsageError("--backend http needs --model (the model id the server serves)");
  }

  std::string kind() const override { return "http"; }

  Generation generate(const GenerateRequest& q) override {
    Generation g;
    json body = {{"model", spec_.model}, {"max_tokens", q.max_tokens}, {"temperature", q.sampling.temperature}, {"top_p", q.sampling.top_p}};
    if (q.sampling.top_k > 0) body["top_k"] = q.sampling.top_k;
    if (q.sampling.temperature > 0) body["seed"] = q.sampling.seed & 0x7fffffff;
    if (!q.stop.empty()) body["stop"] = q.stop;
    if (q.ignore_eos) body["ignore_eos"] = true;
    if (q.chat) body["messages"] = json::array({{{"role", "user"}, {"content", q.prompt_text}}});
    else if (!q.prompt_text.empty()) body["prompt"] = q.prompt_text;
    else body["prompt"] = q.prompt_ids;
    const std::string path = openai_path(client_.url().prefix, q.chat ? "/chat/completions" : "/completions");
    try {
      if (q.stream) stream(path, body, q.chat, g);
      else once(path, body, q.chat, g);
    } catch (const std::exception& e) {  // HttpError, or a reply of the wrong shape
      g.error = e.what();
    }
    return g;
  }

  std::vector<std::vector<float>> score(std::span<const int32_t>, const Variant&) override {
    throw UsageError("the http backend cannot return logits: use --backend engine");
  }

  const TokenCodec& tokens() const override {
    std::call_once(codec_once_, [&] {
      if (!spec_.tokenizer.empty()) codec_ = std::make_unique<LocalCodec>(Tokenizer::load(spec_.tokenizer));
      else if (auto server = server_codec_if_served(client_, spec_.model)) codec_ = std::move(server);
      else codec_ = std::make_unique<LocalCodec>(Tokenizer::load());  // DeepSeek's, the best guess left
    });
    return *codec_;
  }

  Capabilities capabilities() const override {
    Capabilities c;
    c.attention = {AttentionMode::kNative};
    return c;
  }

  json identity() const override {
    json j = {{"backend", "http"}, {"model", spec_.model}, {"base_url", spec_.base_url}};
    if (codec_) j["tokenizer"] = codec_->describe();
    return j;
  }

 private:
  static std::string text_of(const json& choice, bool chat, bool delta) {
    const json* t = nullptr;
    if (chat) {
      const char* key = delta ? "delta" : "message";
      if (choice.contains(key) && choice[key].is_object() && choice[key].contains("content")) t = &choice[key]["content"];
    } else if (choice.contains("text")) {
      t = &choice["text"];
    }
    return t && t->is_string() ? t->get<std::string>() : "";
  }

  static void usage(const json& reply, Generation& g) {
    if (!reply.contains("usage") || !reply["usage"].is_object()) return;
    g.prompt_tokens = reply["usage"].value("prompt_tokens", int64_t{-1});
    g.completion_tokens = reply["usage"].value("completion_tokens", int64_t{-1});
  }

  void once(const std::string& path, const json& body, bool chat, Generation& g) {
    g.sent = Clock::now();
    const json reply = client_.post(path, body);
    g.e2e_s = g.ttft_s = std::chrono::duration<double>(Clock::now() - g.sent).count();
    if (!reply.contains("choices") || !reply["choices"].is_array() || reply["choices"].empty())
      throw HttpError(fmt::format("{}{} answered something that is not a completion: {}", client_.url().origin, path, reply.dump().substr(0, 300)),
                      200, 1);
    const json& choice = reply["choices"][0];
    g.text = text_of(choice, chat, false);
    g.finish_reason = choice.value("finish_reason", json()).is_string() ? choice["finish_reason"].get<std::string>() : "";
    g.chunks = 1;
    usage(reply, g);
  }

  void stream(const std::string& path, json body, bool chat, Generation& g) {
    body["stream_options"] = {{"include_usage", true}};
    Clock::time_point last{};
    bool first = true;
    const auto end = client_.stream(path, body, [&](const json& ev, Clock::time_point at) {
      usage(ev, g);
      if (!ev.contains("choices") || !ev["choices"].is_array() || ev["choices"].empty()) return;
      const json& c = ev["choices"][0];
      if (c.contains("finish_reason") && c["finish_reason"].is_string()) g.finish_reason = c["finish_reason"];
      g.text += text_of(c, chat, true);
      if (first) g.ttft_s = std::chrono::duration<double>(at - g.sent).count();
      else g.itl_s.push_back(std::chrono::duration<double>(at - last).count());
      first = false;
      last = at;
      ++g.chunks;
    }, &g.sent);
    if (first) throw HttpError(fmt::format("{}{}: the stream carried no tokens", client_.url().origin, path), 200, end.attempts);
    g.e2e_s = std::chrono::duration<double>(last - g.sent).count();
    if (!end.done) throw HttpError(fmt::format("{}{}: the stream ended without [DONE]", client_.url().origin, path), 200, end.attempts);
  }

  BackendSpec spec_;
  mutable HttpClient client_;
  mutable std::once_flag codec_once_;
  mutable std::unique_ptr<TokenCodec> codec_;
};

}  // namespace

std::unique_ptr<Backend> make_http_backend(const BackendSpec& spec) {
  if (spec.base_url.empty()) throw UsageError("--backend http needs --base-url (or $V4BENCH_BASE_URL)");
  BackendSpec s = spec;
  for (const char* var : {"V4BENCH_API_KEY", "OPENAI_API_KEY"})
    if (const char* k = std::getenv(var); s.api_key.empty() && k != nullptr && *k != '\0') s.api_key = k;
  return std::make_unique<HttpBackend>(s);
}

std::string openai_path(const std::string& base_prefix, const std::string& endpoint) {
  return base_prefix.ends_with("/v1") ? base_prefix + endpoint : base_prefix + "/v1" + endpoint;
}

}  // namespace v4b::evals
