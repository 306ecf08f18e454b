#include "evals/serve/openai_server.h"

#include <sys/socket.h>

#include <csignal>
#include <ctime>
#include <random>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "engine/io/chat_encoding.h"
#include "evals/backends/logprobs.h"

namespace v4b::evals {

namespace {

using nlohmann::json;

// A request the server answers with an OpenAI error object.
struct ApiError : std::runtime_error {
  int status;
  std::string param, type, code;
  ApiError(int s, const std::string& msg, std::string p = "", std::string t = "invalid_request_error", std::string c = "")
      : std::runtime_error(msg), status(s), param(std::move(p)), type(std::move(t)), code(std::move(c)) {}
};

json error_body(const std::string& msg, const std::string& type, const std::string& param, const std::string& code) {
  return {{"error", {{"message", msg}, {"type", type}, {"param", param.empty() ? json(nullptr) : json(param)},
                     {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.status, error_body(e.what(), e.type, e.param, e.code));
}

// Streams text token by token while holding back a multi-byte UTF-8 character cut between tokens,
// so the pieces concatenate to exactly utf8_lossy(all bytes) — the non-streaming text.
class Utf8Stream {
 public:
  std::string push(std::string_view bytes) {
    pending_ += bytes;
    const size_t keep = incomplete_tail(pending_);
    std::string out = utf8_lossy(std::string_view(pending_).substr(0, pending_.size() - keep));
    pending_.erase(0, pending_.size() - keep);
    return out;
  }
  std::string finish() {
    std::string out = utf8_lossy(pending_);
    pending_.clear();
    return out;
  }

 private:
  // Length of a trailing sequence that is valid so far but unfinished (0..3 bytes).
  static size_t incomplete_tail(std::string_view s) {
    for (size_t k = 1; k <= 3 && k <= s.size(); ++k) {
      const auto b = static_cast<uint8_t>(s[s.size() - k]);
      if ((b & 0xC0) == 0x80) continue;  // a continuation byte: the lead is further back
      const size_t need = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xC2 && b <= 0xDF ? 2 : 0;
      if (need <= k) return 0;  // ASCII, an invalid lead, or a complete character
      if (k >= 2) {             // the second byte's range depends on the lead (RFC 3629)
        const auto c = static_cast<uint8_t>(s[s.size() - k + 1]);
        uint8_t lo = 0x80, hi = 0xBF;
        if (b == 0xE0) lo = 0xA0;
        else if (b == 0xED) hi = 0x9F;
        else if (b == 0xF0) lo = 0x90;
        else if (b == 0xF4) hi = 0x8F;
        if (c < lo || c > hi) return 0;
      }
      return k;
    }
    return 0;
  }
  std::string pending_;
};

// A completion's text as its tokens arrive: UTF-8 characters completed across tokens, ended at the
// first stop string (which is not returned, as OpenAI does); text that could still grow into a stop
// string is held back. Streaming and non-streaming responses both use it, so they return the same.
class CompletionText {
 public:
  explicit CompletionText(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // The text one token's bytes let out.
  std::string push(std::string_view bytes) { return release(utf8_.push(bytes), false); }
  // Whatever is still held back, once the last token has been pushed.
  std::string finish() { return release(utf8_.finish(), true); }
  bool stopped() const { return stopped_; }

 private:
  std::string release(const std::string& text, bool last) {
    if (stopped_) return {};
    pending_ += text;
    size_t cut = std::string::npos;
    for (const auto& s : stops_) cut = std::min(cut, pending_.find(s));
    if (cut != std::string::npos) {
      stopped_ = true;
      std::string out = pending_.substr(0, cut);
      pending_.clear();
      return out;
    }
    size_t keep = 0;  // the longest tail that is the start of a stop string
    for (const auto& s : stops_)
      for (size_t k = std::min(s.size() - 1, pending_.size()); !last && k > keep; --k)
        if (pending_.ends_with(std::string_view(s).substr(0, k))) {
          keep = k;
          break;
        }
    std::string out = pending_.substr(0, pending_.size() - keep);
    pending_.erase(0, pending_.size() - keep);
    return out;
  }

  std::vector<std::string> stops_;
  Utf8Stream utf8_;
  std::string pending_;
  bool stopped_ = false;
};

const json* find(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

int64_t get_int(const json& body, const char* name, int64_t def, int64_t lo, int64_t hi) {
  const json* v = find(body, name);
  if (!v) return def;
  if (!v->is_number_integer() && !v->is_number_unsigned())
    throw ApiError(400, fmt::format("'{}' must be an integer", name), name);
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw ApiError(400, fmt::format("'{}' is too large", name), name);
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) throw ApiError(400, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, x), name);
  return x;
}

double get_num(const json& body, const char* name, double def, double lo, double hi) {
  const json* v = find(body, name);
  if (!v) return def;
  if (!v->is_number()) throw ApiError(400, fmt::format("'{}' must be a number", name), name);
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) throw ApiError(400, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, x), name);
  return x;
}

bool get_bool(const json& body, const char* name, bool def) {
  const json* v = find(body, name);
  if (!v) return def;
  if (!v->is_boolean()) throw ApiError(400, fmt::format("'{}' must be true or false", name), name);
  return v->get<bool>();
}

// `stop`: a string or an array of up to 16 strings; empty ones are ignored.
std::vector<std::string> get_stops(const json& body) {
  const json* v = find(body, "stop");
  std::vector<std::string> out;
  if (!v) return out;
  if (!v->is_string() && !v->is_array()) throw ApiError(400, "'stop' must be a string or an array of strings", "stop");
  const json list = v->is_string() ? json::array({*v}) : *v;
  if (list.size() > 16) throw ApiError(400, fmt::format("'stop' may hold at most 16 strings, got {}", list.size()), "stop");
  for (const auto& s : list) {
    if (!s.is_string()) throw ApiError(400, "'stop' must be a string or an array of strings", "stop");
    if (!s.get<std::string>().empty()) out.push_back(s.get<std::string>());
  }
  return out;
}

std::string message_text(const json& content, size_t i) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {  // [{"type": "text", "text": "..."}, ...]
    std::string text;
    for (const auto& part : content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
        throw ApiError(400, fmt::format("messages[{}].content: only text parts are supported", i), "messages");
      text += part["text"].get<std::string>();
    }
    return text;
  }
  throw ApiError(400, fmt::format("messages[{}].content must be a string or an array of text parts", i), "messages");
}

// A JSON library message without its "[json.exception.parse_error.101] " prefix.
std::string plain(const json::exception& e) {
  const std::string what = e.what();
  const size_t at = what.rfind("] ", what.find(' '));
  return what.starts_with("[json.exception.") && at != std::string::npos ? what.substr(at + 2) : what;
}

inline constexpr int64_t kMaxLogprobs = 20;  // the most alternatives per position OpenAI-compatible servers return

// What a request asks in log-probabilities, in OpenAI's parameters (completions: logprobs K and
// echo; chat: logprobs and top_logprobs) and vLLM's (prompt_logprobs K).
struct LogprobAsk {
  bool tokens = false;      // each generated token's log-probability ...
  int64_t top = 0;          // ... with its `top` most likely alternatives
  bool echo = false;        // completions: the prompt is returned before the completion (scored too with `tokens`)
  int64_t prompt_top = -1;  // every prompt token's log-probability, with this many alternatives (-1: not asked)
  bool prompt_rows() const { return (echo && tokens) || prompt_top >= 0; }
};

// cpp-httplib 0.11 listens with a backlog of 5: a burst of connections overflows it and some
// clients see their connection dropped. Re-listening on the bound socket raises the backlog.
class HttpServer : public httplib::Server {
 public:
  void raise_backlog() { ::listen(svr_sock_, SOMAXCONN); }
};

}  // namespace

struct OpenAiServer::Impl {
  Impl(const Engine& e, Tokenizer t, SchedulerOptions s, ServerOptions o, int64_t max_context)
      : engine(e), tok(std::move(t)), opts(std::move(o)), sched(e, s), max_len(max_context), vocab(e.config().vocab),
        fold(tok.vocab_size() > vocab), numerics(numerics_name(resolve_numerics(e.config(), s.session.numerics))) {}

  const Engine& engine;
  Tokenizer tok;
  ServerOptions opts;
  Scheduler sched;
  HttpServer http;
  const int64_t max_len;
  const int32_t vocab;
  const bool fold;  // text ids beyond a small synthetic vocabulary are folded into it (see README)
  const std::string numerics;  // what every session computes: "official" or "fp32" (/v1/models says)
  std::atomic<bool> draining{false}, in_run{false};
  std::atomic<uint64_t> next_id{1};
  const int64_t started = std::time(nullptr);  // /v1/models' "created"
  const std::string id_prefix = [] {  // response ids stay unique across restarts of the server
    std::random_device rd;
    return fmt::format("{:08x}", rd());
  }();
  std::atomic<int> open_streams{0};  // SSE responses still being written
  std::once_flag shutdown_once;

  void install_routes();
  std::vector<int32_t> encode_text(const std::string& text, bool bos) const;
  std::vector<int32_t> completion_prompt(const json& p) const;
  std::vector<int32_t> chat_prompt(const json& body) const;
  std::string token_bytes(int32_t id) const;
  std::string text_of(const std::vector<int32_t>& ids) const;
  std::string token_text(int32_t id) const { return utf8_lossy(token_bytes(id)); }
  json completion_logprobs(const std::vector<int32_t>& ids, const std::vector<std::optional<PositionLogprobs>>& at, size_t offset = 0) const;
  json chat_logprobs(const std::vector<PositionLogprobs>& at) const;
  json prompt_logprobs(const std::vector<int32_t>& prompt, const std::vector<PositionLogprobs>& at, int64_t top) const;
  void generate(const httplib::Request& req, httplib::Response& res, const json& body, std::vector<int32_t> prompt, bool chat);
  json parse_body(const httplib::Request& req) const;
  LogprobAsk logprob_ask(const json& body, bool chat) const;
  json model_card() const;
  void check_model(const json& body) const;
  void shutdown();
};

std::vector<int32_t> OpenAiServer::Impl::encode_text(const std::string& text, bool bos) const {
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, bos);
  } catch (const UsageError& e) {
    throw ApiError(400, e.what());
  }
  if (fold)
    for (auto& id : ids) id %= vocab;
  return ids;
}

std::vector<int32_t> OpenAiServer::Impl::completion_prompt(const json& p) const {
  if (p.is_string()) return encode_text(p.get<std::string>(), /*bos=*/true);
  if (p.is_array() && p.size() == 1 && (p[0].is_string() || p[0].is_array())) return completion_prompt(p[0]);
  if (p.is_array() && !p.empty() && std::all_of(p.begin(), p.end(), [](const json& x) { return x.is_number_integer(); })) {
    std::vector<int32_t> ids;
    for (const auto& x : p) {
      const int64_t id = x.get<int64_t>();
      if (id < 0 || id >= vocab)
        throw ApiError(400, fmt::format("token id {} is outside the vocabulary (0..{})", id, vocab - 1), "prompt");
      ids.push_back(static_cast<int32_t>(id));
    }
    return ids;
  }
  if (p.is_array() && p.size() > 1 && (p[0].is_string() || p[0].is_array()))
    throw ApiError(400, "batched prompts are not supported: send one prompt per request", "prompt");
  throw ApiError(400, "'prompt' must be a string or a non-empty array of token ids", "prompt");
}

std::vector<int32_t> OpenAiServer::Impl::chat_prompt(const json& body) const {
  const json* msgs = find(body, "messages");
  if (!msgs) throw ApiError(400, "missing required parameter 'messages'", "messages");
  if (!msgs->is_array() || msgs->empty()) throw ApiError(400, "'messages' must be a non-empty array", "messages");
  std::vector<Message> messages;
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw ApiError(400, fmt::format("messages[{}] needs a string 'role'", i), "messages");
    std::string role = m["role"];
    if (role == "developer") role = "system";  // OpenAI's newer name for the system message
    if (role != "system" && role != "user" && role != "assistant")
      throw ApiError(400, fmt::format("messages[{}].role '{}' is not supported: expected system, developer, user or assistant", i, role),
                     "messages");
    messages.push_back({role, m.contains("content") && !m["content"].is_null() ? message_text(m["content"], i) : "", std::nullopt});
  }
  bool thinking = false;
  if (const json* kw = find(body, "chat_template_kwargs"); kw && kw->is_object()) thinking = get_bool(*kw, "thinking", false);
  if (engine.config().is_v4()) {
    std::vector<int32_t> ids;
    try {
      ids = encode_chat(messages, thinking, tok);
    } catch (const UsageError& e) {
      throw ApiError(400, e.what(), "messages");
    }
    if (fold)
      for (auto& id : ids) id %= vocab;
    return ids;
  }
  // Other families: a plain documented template, "role: content" blocks, then "assistant: ".
  std::string text;
  for (const auto& m : messages) text += m.role + ": " + m.content + "\n\n";
  return encode_text(text + "assistant: ", /*bos=*/true);
}

std::string OpenAiServer::Impl::token_bytes(int32_t id) const {
  try {
    return tok.decode_bytes(std::span<const int32_t>(&id, 1));
  } catch (const UsageError&) {
    return {};  // an id the tokenizer has no text for (a padded vocabulary)
  }
}

std::string OpenAiServer::Impl::text_of(const std::vector<int32_t>& ids) const {
  std::string bytes;
  for (int32_t id : ids) bytes += token_bytes(id);
  return utf8_lossy(bytes);
}

json OpenAiServer::Impl::parse_body(const httplib::Request& req) const {
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos)
    throw ApiError(400, "the request body is empty: send a JSON object (Content-Type: application/json)");
  json body;
  try {
    body = json::parse(req.body);
  } catch (const json::parse_error& e) {
    throw ApiError(400, fmt::format("the request body is not valid JSON: {}", plain(e)));
  }
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return body;
}

LogprobAsk OpenAiServer::Impl::logprob_ask(const json& body, bool chat) const {
  LogprobAsk a;
  const json* lp = find(body, "logprobs");
  if (chat) {
    a.tokens = get_bool(body, "logprobs", false);
    if (find(body, "top_logprobs")) {
      if (!a.tokens) throw ApiError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs");
      a.top = get_int(body, "top_logprobs", 0, 0, kMaxLogprobs);
    }
    if (get_bool(body, "echo", false)) throw ApiError(400, "'echo' applies to /v1/completions, not chat", "echo");
  } else {
    if (lp && lp->is_boolean()) a.tokens = lp->get<bool>();  // as vLLM accepts
    else if (lp) a.tokens = true, a.top = get_int(body, "logprobs", 0, 0, kMaxLogprobs);
    a.echo = get_bool(body, "echo", false);
  }
  if (find(body, "prompt_logprobs")) a.prompt_top = get_int(body, "prompt_logprobs", 0, 0, kMaxLogprobs);
  if (get_bool(body, "stream", false) && (a.echo || a.prompt_top >= 0))
    throw ApiError(400, "'echo' and 'prompt_logprobs' are answered without streaming: set stream to false", a.echo ? "echo" : "prompt_logprobs");
  return a;
}

// OpenAI's legacy completions shape; `at` is empty where a position has no log-probability (the
// first prompt token of an echo). text_offset counts the bytes of the tokens before each, from `offset`.
json OpenAiServer::Impl::completion_logprobs(const std::vector<int32_t>& ids, const std::vector<std::optional<PositionLogprobs>>& at,
                                             size_t offset) const {
  json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (size_t i = 0; i < ids.size(); ++i) {
    tokens.push_back(token_text(ids[i]));
    offsets.push_back(offset);
    offset += token_bytes(ids[i]).size();
    if (!at[i]) {
      lps.push_back(nullptr), tops.push_back(nullptr);
      continue;
    }
    lps.push_back(at[i]->chosen.logprob);
    json top = json::object();
    for (const auto& t : at[i]->top) top[token_text(t.id)] = t.logprob;
    tops.push_back(top);
  }
  return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

// OpenAI's chat shape: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}.
json OpenAiServer::Impl::chat_logprobs(const std::vector<PositionLogprobs>& at) const {
  auto entry = [this](const TokenLogprob& t) {
    const std::string b = token_bytes(t.id);
    json bytes = json::array();
    for (unsigned char c : b) bytes.push_back(c);
    return json{{"token", token_text(t.id)}, {"logprob", t.logprob}, {"bytes", bytes}};
  };
  json content = json::array();
  for (const auto& p : at) {
    json e = entry(p.chosen);
    e["top_logprobs"] = json::array();
    for (const auto& t : p.top) e["top_logprobs"].push_back(entry(t));
    content.push_back(e);
  }
  return {{"content", content}};
}

// vLLM's prompt_logprobs: null for the first prompt token, then per token {id: {logprob, rank,
// decoded_token}} for the token itself and the `top` most likely.
json OpenAiServer::Impl::prompt_logprobs(const std::vector<int32_t>& prompt, const std::vector<PositionLogprobs>& at, int64_t top) const {
  json out = json::array({nullptr});
  for (size_t j = 1; j < prompt.size() && j - 1 < at.size(); ++j) {
    const PositionLogprobs& p = at[j - 1];
    json e = json::object();
    for (size_t r = 0; r < p.top.size() && static_cast<int64_t>(r) < top; ++r)
      e[std::to_string(p.top[r].id)] = {{"logprob", p.top[r].logprob}, {"rank", r + 1}, {"decoded_token", token_text(p.top[r].id)}};
    e[std::to_string(p.chosen.id)] = {{"logprob", p.chosen.logprob}, {"rank", p.rank}, {"decoded_token", token_text(p.chosen.id)}};
    out.push_back(e);
  }
  return out;
}

json OpenAiServer::Impl::model_card() const {
  return {{"id", opts.model_name}, {"object", "model"}, {"created", started}, {"owned_by", "v4bench"}, {"max_model_len", max_len},
          {"numerics", numerics}};
}

void OpenAiServer::Impl::check_model(const json& body) const {
  const json* m = find(body, "model");
  if (!m) throw ApiError(400, "missing required parameter 'model'", "model");
  if (!m->is_string()) throw ApiError(400, "'model' must be a string", "model");
  if (m->get<std::string>() != opts.model_name)
    throw ApiError(404, fmt::format("the model '{}' does not exist: this server serves '{}'", m->get<std::string>(), opts.model_name),
                   "model", "invalid_request_error", "model_not_found");
}

void OpenAiServer::Impl::generate(const httplib::Request&, httplib::Response& res, const json& body, std::vector<int32_t> prompt,
                                  bool chat) {
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt >= max_len)
    throw ApiError(400,
                   fmt::format("this model's maximum context length is {} tokens, but the prompt has {} tokens", max_len, n_prompt),
                   chat ? "messages" : "prompt", "invalid_request_error", "context_length_exceeded");
  // Too many tokens asked for are refused, not clamped, as OpenAI and vLLM do: the client learns why.
  const LogprobAsk ask = logprob_ask(body, chat);
  const char* max_name = chat && find(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  const int64_t def = chat ? std::min(opts.default_max_tokens, max_len - n_prompt) : 16;
  // With echo, 0 new tokens asks for the prompt's log-probabilities alone (how scoring clients call).
  const int64_t max_tokens = get_int(body, max_name, def, ask.echo ? 0 : 1, INT64_MAX);
  if (n_prompt + max_tokens > max_len)
    throw ApiError(400,
                   fmt::format("this model's maximum context length is {} tokens, but {} were requested ({} in the prompt, {} "
                               "for the completion): lower {}",
                               max_len, n_prompt + max_tokens, n_prompt, max_tokens, max_name),
                   max_name, "invalid_request_error", "context_length_exceeded");
  if (get_int(body, "n", 1, 1, 1) != 1) throw ApiError(400, "only n = 1 is supported", "n");
  std::vector<std::string> stops = get_stops(body);
  const uint64_t id_num = next_id++;
  GenSpec spec;
  spec.prompt = std::move(prompt);
  std::vector<int32_t> prompt_ids;  // kept where the answer shows the prompt
  if (ask.echo || ask.prompt_rows()) prompt_ids = spec.prompt;
  // Log-probabilities come from the scheduler's logits tap, on its thread, before each token is
  // published: a reader that sees token i finds its entry.
  struct Scores {
    std::mutex mu;
    std::vector<PositionLogprobs> prompt;     // the rows predicting prompt tokens 1..n-1
    std::vector<PositionLogprobs> generated;  // one per drawn token
  };
  auto scores = std::make_shared<Scores>();
  if (ask.tokens || ask.prompt_rows()) {
    spec.tap.prompt = ask.prompt_rows();
    const int64_t k = std::max(ask.top, ask.prompt_top);
    spec.tap.fn = [scores, prompt = prompt_ids, k, V = static_cast<size_t>(vocab), tap_prompt = spec.tap.prompt](std::span<const float> rows,
                                                                                                                  int32_t drawn) {
      std::lock_guard lk(scores->mu);
      size_t r = 0;
      for (; tap_prompt && scores->prompt.size() + 1 < prompt.size() && (r + 1) * V <= rows.size(); ++r)
        scores->prompt.push_back(logprobs_at(rows.subspan(r * V, V), prompt[scores->prompt.size() + 1], k));
      if (r == 0 && drawn >= 0 && rows.size() == V) scores->generated.push_back(logprobs_at(rows, drawn, k));
    };
  }
  // What echo returns before the completion: the prompt as sent, or its tokens' text.
  std::string echoed;
  if (ask.echo) {
    const json* p = find(body, "prompt");
    echoed = p && p->is_string() ? p->get<std::string>() : p && p->is_array() && p->size() == 1 && (*p)[0].is_string() ? (*p)[0].get<std::string>()
                                                                                                                    : text_of(prompt_ids);
  }
  spec.max_tokens = max_tokens;
  spec.sampling.temperature = get_num(body, "temperature", 1.0, 0, 100);
  spec.sampling.top_p = get_num(body, "top_p", 1.0, 1e-9, 1.0);
  spec.sampling.top_k = std::max<int64_t>(0, get_int(body, "top_k", 0, -1, INT32_MAX));
  spec.sampling.seed = static_cast<uint64_t>(get_int(body, "seed", static_cast<int64_t>(id_num), 0, INT64_MAX));
  spec.ignore_eos = get_bool(body, "ignore_eos", false);
  const bool stream = get_bool(body, "stream", false);
  bool include_usage = false;
  if (const json* so = find(body, "stream_options")) {
    if (!stream) throw ApiError(400, "'stream_options' is only allowed with stream = true", "stream_options");
    if (!so->is_object()) throw ApiError(400, "'stream_options' must be an object", "stream_options");
    include_usage = get_bool(*so, "include_usage", false);
  }
  auto r = draining ? nullptr : sched.submit(std::move(spec));
  if (!r) throw ApiError(503, "the server is overloaded or shutting down: retry later", "", "server_error", "overloaded");

  const std::string id = fmt::format("{}-{}-{}", chat ? "chatcmpl" : "cmpl", id_prefix, id_num);
  const int64_t created = std::time(nullptr);
  auto usage = [n_prompt](size_t n_out) {
    return json{{"prompt_tokens", n_prompt}, {"completion_tokens", n_out}, {"total_tokens", n_prompt + static_cast<int64_t>(n_out)}};
  };
  const json head = {{"id", id}, {"object", chat ? (stream ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
                     {"created", created}, {"model", opts.model_name}};
  const bool return_ids = get_bool(body, "return_token_ids", false);

  if (!stream) {
    // Tokens are read as they come, so a stop string ends the generation when it appears.
    CompletionText completion(std::move(stops));
    std::string text, reason;
    std::vector<int32_t> tokens;
    size_t used = 0;
    while (reason.empty()) {
      r->wait_beyond(used);
      bool finished = false;
      {
        std::lock_guard lk(r->mu);
        tokens.insert(tokens.end(), r->tokens.begin() + static_cast<std::ptrdiff_t>(tokens.size()), r->tokens.end());
        finished = r->finished;
        reason = finished ? r->finish_reason : "";
      }
      for (; used < tokens.size() && !completion.stopped(); ++used) text += completion.push(token_bytes(tokens[used]));
      if (completion.stopped()) {
        r->stop_requested = true;
        reason = "stop";
      } else if (finished) {
        text += completion.finish();
      }
    }
    tokens.resize(used);
    if (reason == "error") throw ApiError(500, "generation failed: " + r->error, "", "server_error");
    if (reason == "abort") throw ApiError(503, "the request was aborted: " + r->error, "", "server_error");
    json choice = {{"index", 0}, {"finish_reason", reason}};
    std::vector<PositionLogprobs> prompt_lps, generated_lps;
    {
      std::lock_guard lk(scores->mu);
      prompt_lps = scores->prompt;
      generated_lps.assign(scores->generated.begin(), scores->generated.begin() + static_cast<std::ptrdiff_t>(std::min(used, scores->generated.size())));
    }
    if (chat) {
      choice["message"] = {{"role", "assistant"}, {"content", text}};
      choice["logprobs"] = ask.tokens ? chat_logprobs(generated_lps) : json(nullptr);
    } else {
      choice["text"] = echoed + text;
      choice["logprobs"] = nullptr;
      if (ask.tokens) {
        std::vector<int32_t> ids;
        std::vector<std::optional<PositionLogprobs>> at;
        if (ask.echo) {
          ids = prompt_ids;
          at.emplace_back();  // the first prompt token has no context to be scored in
          for (size_t j = 1; j < prompt_ids.size(); ++j) at.emplace_back(j - 1 < prompt_lps.size() ? std::optional(prompt_lps[j - 1]) : std::nullopt);
        }
        for (size_t i = 0; i < generated_lps.size(); ++i) ids.push_back(tokens[i]), at.emplace_back(generated_lps[i]);
        choice["logprobs"] = completion_logprobs(ids, at);
      }
    }
    if (return_ids) choice["token_ids"] = tokens;
    json out = head;
    if (ask.prompt_top >= 0) (chat ? out : choice)["prompt_logprobs"] = prompt_logprobs(prompt_ids, prompt_lps, ask.prompt_top);
    out["choices"] = json::array({choice});
    out["usage"] = usage(tokens.size());
    send_json(res, 200, out);
    return;
  }

  struct StreamState {
    std::shared_ptr<GenRequest> req;
    CompletionText completion;
    size_t sent = 0;
    size_t offset = 0;  // text_offset of the next token
  };
  auto st = std::make_shared<StreamState>(StreamState{r, CompletionText(std::move(stops)), 0, 0});
  res.set_header("Cache-Control", "no-cache");
  ++open_streams;  // until the response's releaser runs, once it is written or abandoned
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, st, head, chat, include_usage, return_ids, usage, scores, want_lps = ask.tokens](size_t, httplib::DataSink& sink) {
        GenRequest& g = *st->req;
        g.wait_beyond(st->sent);
        std::vector<int32_t> fresh;
        bool finished = false;
        std::string reason, error;
        {
          std::lock_guard lk(g.mu);
          fresh.assign(g.tokens.begin() + static_cast<std::ptrdiff_t>(st->sent), g.tokens.end());
          finished = g.finished;
          reason = g.finish_reason;
          error = g.error;
        }
        auto send = [&](const json& j) {
          const std::string ev = "data: " + j.dump() + "\n\n";
          if (sink.write(ev.data(), ev.size())) return true;
          g.cancelled = true;  // the client has gone: free its session
          return false;
        };
        // One event per token (vLLM's ITL is per chunk); the last carries the finish reason.
        auto chunk = [&](const std::string& text, const json& finish, const json* ids) {
          json c = head;
          json choice = {{"index", 0}, {"finish_reason", finish}};
          std::optional<PositionLogprobs> lp;  // this token's, when asked for
          if (want_lps && ids) {
            std::lock_guard lk(scores->mu);
            if (st->sent < scores->generated.size()) lp = scores->generated[st->sent];
          }
          if (chat) {
            choice["delta"] = {{"content", text}};
            if (st->sent == 0) choice["delta"]["role"] = "assistant";
            if (want_lps) choice["logprobs"] = lp ? chat_logprobs({*lp}) : json(nullptr);
          } else {
            choice["text"] = text;
            const int32_t id_now = (*ids)[0].get<int32_t>();
            choice["logprobs"] = lp ? completion_logprobs({id_now}, {lp}, st->offset) : json(nullptr);
            st->offset += token_bytes(id_now).size();
          }
          if (ids && return_ids) choice["token_ids"] = *ids;
          c["choices"] = json::array({choice});
          return send(c);
        };
        for (size_t i = 0; i < fresh.size(); ++i) {
          std::string text = st->completion.push(token_bytes(fresh[i]));
          bool last = finished && i + 1 == fresh.size();
          if (st->completion.stopped()) {  // a stop string: this token ends the completion
            g.stop_requested = true;
            last = finished = true;
            reason = "stop";
            fresh.resize(i + 1);
          } else if (last) {
            text += st->completion.finish();
          }
          const json ids = json::array({fresh[i]});
          if (!chunk(text, last ? json(reason) : json(nullptr), &ids)) return false;
          ++st->sent;
        }
        if (!finished) return true;
        if (fresh.empty() && (reason == "abort" || reason == "error")) {
          // Nothing more to say but why it ended.
          if (!send(error_body(reason == "abort" ? "the request was aborted: " + error : "generation failed: " + error, "server_error",
                               "", reason)))
            return false;
        }
        if (include_usage) {
          json u = head;
          u["choices"] = json::array();
          u["usage"] = usage(st->sent);
          if (!send(u)) return false;
        }
        static const std::string done = "data: [DONE]\n\n";
        if (!sink.write(done.data(), done.size())) return false;
        sink.done();
        return true;
      },
      [this, st](bool success) {
        if (!success) st->req->cancelled = true;
        --open_streams;
      });
}

void OpenAiServer::Impl::install_routes() {
  // Every handler's errors become OpenAI error objects; anything unexpected is a 500, never a crash.
  auto guarded = [this](auto fn) {
    return [this, fn](const httplib::Request& req, httplib::Response& res) {
      try {
        fn(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const json::exception& e) {
        send_error(res, ApiError(400, fmt::format("invalid request: {}", plain(e))));
      } catch (const std::exception& e) {
        send_error(res, ApiError(500, fmt::format("internal error: {}", e.what()), "", "server_error"));
      }
    };
  };
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (opts.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + opts.api_key) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(401, "invalid or missing API key (send Authorization: Bearer KEY)", "", "authentication_error",
                             "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string msg = res.status == 404   ? fmt::format("no route {} {}", req.method, req.path)
                            : res.status == 413 ? std::string("the request body is too large")
                            : res.status == 400 ? std::string("the request could not be read: send a JSON body with a Content-Length")
                                                : fmt::format("HTTP {}", res.status);
    send_json(res, res.status, error_body(msg, res.status >= 500 ? "server_error" : "invalid_request_error", "", ""));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_json(res, 500, error_body("internal error: " + what, "server_error", "", ""));
  });

  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const auto s = sched.stats();
    send_json(res, draining ? 503 : 200,
              {{"status", draining ? "shutting down" : "ok"}, {"active", s.active}, {"waiting", s.waiting}, {"completed", s.completed},
               {"cancelled", s.cancelled}});
  });
  http.Get("/v1/models", guarded([this](const httplib::Request&, httplib::Response& res) {
             send_json(res, 200, {{"object", "list"}, {"data", json::array({model_card()})}});
           }));
  http.Get(R"(/v1/models/(.+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
             const std::string asked = req.matches[1];
             if (asked != opts.model_name)
               throw ApiError(404, fmt::format("the model '{}' does not exist: this server serves '{}'", asked, opts.model_name), "model",
                              "invalid_request_error", "model_not_found");
             send_json(res, 200, model_card());
           }));
  http.Post("/v1/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
              const json body = parse_body(req);
              check_model(body);
              const json* p = find(body, "prompt");
              if (!p) throw ApiError(400, "missing required parameter 'prompt'", "prompt");
              generate(req, res, body, completion_prompt(*p), /*chat=*/false);
            }));
  http.Post("/v1/chat/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
              const json body = parse_body(req);
              check_model(body);
              generate(req, res, body, chat_prompt(body), /*chat=*/true);
            }));
  // vLLM's /tokenize: {"prompt": TEXT} or {"messages": [...]}; ids as the engine would see them.
  http.Post("/tokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
              const json body = parse_body(req);
              if (find(body, "model")) check_model(body);
              std::vector<int32_t> ids;
              if (find(body, "messages")) ids = chat_prompt(body);
              else if (const json* p = find(body, "prompt"); p && p->is_string())
                ids = encode_text(p->get<std::string>(), get_bool(body, "add_special_tokens", true));
              else throw ApiError(400, "missing required parameter 'prompt' (a string) or 'messages'", "prompt");
              send_json(res, 200, {{"count", ids.size()}, {"max_model_len", max_len}, {"tokens", ids}});
            }));
  http.Post("/detokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
              const json body = parse_body(req);
              const json* t = find(body, "tokens");
              if (!t || !t->is_array()) throw ApiError(400, "missing required parameter 'tokens' (an array of ids)", "tokens");
              std::vector<int32_t> ids;
              for (const auto& x : *t) {
                if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= vocab)
                  throw ApiError(400, fmt::format("'tokens' must hold ids in 0..{}", vocab - 1), "tokens");
                ids.push_back(x.get<int32_t>());
              }
              send_json(res, 200, {{"prompt", text_of(ids)}});
            }));
}

void OpenAiServer::Impl::shutdown() {
  std::call_once(shutdown_once, [this] {
    draining = true;
    const auto deadline = std::chrono::steady_clock::now() + opts.drain_timeout + std::chrono::seconds(1);
    sched.drain(opts.drain_timeout);  // running requests finish generating (or are aborted)
    // Streams may still be writing their last tokens: stopping the server now would cut them off.
    while (open_streams > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // run() may be between its check of `draining` and httplib's listen loop: wait for one or the other.
    while (in_run && !http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    http.stop();
  });
}

OpenAiServer::OpenAiServer(const Engine& engine, Tokenizer tokenizer, SchedulerOptions sched, ServerOptions opts) {
  const int64_t model_max = engine.config().max_position;
  max_len_ = opts.max_model_len > 0 ? std::min(opts.max_model_len, model_max) : model_max;
  if (opts.model_name.empty()) throw UsageError("the server needs a model name");
  std::signal(SIGPIPE, SIG_IGN);  // a client that disconnects mid-stream must not kill the process
  const int threads = std::max(1, opts.http_threads);
  impl_ = std::make_unique<Impl>(engine, std::move(tokenizer), sched, std::move(opts), max_len_);
  impl_->http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  impl_->http.set_payload_max_length(64ull << 20);
  impl_->http.set_tcp_nodelay(true);
  impl_->install_routes();
}

OpenAiServer::~OpenAiServer() { shutdown(); }

int OpenAiServer::bind(const std::string& host, int port) {
  const int bound = port == 0 ? impl_->http.bind_to_any_port(host) : (impl_->http.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) throw UsageError(fmt::format("cannot listen on {}:{} (in use, or not an address of this machine)", host, port));
  impl_->http.raise_backlog();
  return bound;
}

void OpenAiServer::run() {
  impl_->in_run = true;
  if (!impl_->draining) impl_->http.listen_after_bind();
  impl_->in_run = false;
}

void OpenAiServer::shutdown() { impl_->shutdown(); }

}  // namespace v4b::evals
