// evals/backends: the one HTTP client (retries on 503 and dropped connections, Retry-After, no retry
// on client errors, streaming), the engine and http backends against each other on the same
// weights, scoring against a plain session, and prompts sized in a served model's own tokens.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "evals/backends/backend.h"
#include "evals/backends/engine_backend.h"
#include "evals/backends/http_client.h"
#include "evals/backends/token_codec.h"
#include "evals/suites/suite.h"
#include "evals/suites/throughput/throughput_params.h"
#include "reports/render/views/view.h"
#include "reports/store/store.h"
#include "tests/serve_util.h"
#include "tests/test_util.h"

namespace v4b::test {
namespace {

using nlohmann::json;
using evals::HttpClient;
using evals::HttpError;
using evals::HttpOptions;

// A TCP server that answers its n-th connection with the n-th scripted act, so a test can make a
// server fail in the ways real ones do: an HTTP error, a connection dropped before any answer.
class ScriptedServer {
 public:
  enum class Act { k503, k503After1s, kDrop, k400, k404, kJson, kStream };

  explicit ScriptedServer(std::vector<Act> script) : script_(std::move(script)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0) throw std::runtime_error("bind");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return fmt::format("http://127.0.0.1:{}/v1", port_); }
  int connections() const { return connections_; }
  std::vector<std::string> requests() const {
    std::lock_guard lk(mu_);
    return requests_;
  }

 private:
  static std::string read_request(int c) {
    std::string in;
    char buf[4096];
    size_t need = std::string::npos;
    while (need == std::string::npos || in.size() < need) {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      if (const size_t end = in.find("\r\n\r\n"); need == std::string::npos && end != std::string::npos) {
        size_t length = 0;
        if (const size_t cl = in.find("Content-Length: "); cl != std::string::npos) length = std::stoul(in.substr(cl + 16));
        need = end + 4 + length;
      }
    }
    return in;
  }
  static void send_all(int c, const std::string& s) { (void)!::send(c, s.data(), s.size(), MSG_NOSIGNAL); }
  static std::string reply(const std::string& status, const std::string& headers, const std::string& body) {
    return fmt::format("HTTP/1.1 {}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{}", status, headers, body.size(), body);
  }

  void serve() {
    for (size_t i = 0; !stop_; ++i) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++connections_;
      const std::string req = read_request(c);
      {
        std::lock_guard lk(mu_);
        requests_.push_back(req);
      }
      const Act act = i < script_.size() ? script_[i] : Act::kJson;
      switch (act) {
        case Act::k503: send_all(c, reply("503 Service Unavailable", "Retry-After: 0\r\n", R"({"error":{"message":"overloaded"}})")); break;
        case Act::k503After1s: send_all(c, reply("503 Service Unavailable", "Retry-After: 1\r\n", "busy")); break;
        case Act::k400: send_all(c, reply("400 Bad Request", "Content-Type: application/json\r\n", R"({"error":{"message":"prompt is too long"}})")); break;
        case Act::k404:
          send_all(c, reply("404 Not Found", "Content-Type: application/json\r\n", R"({"error":{"message":"The model `m` does not exist."}})"));
          break;
        case Act::kDrop: break;  // read the request, answer nothing, hang up
        case Act::kJson: send_all(c, reply("200 OK", "Content-Type: application/json\r\n", R"({"choices":[{"text":"fine","finish_reason":"stop"}]})")); break;
        case Act::kStream:
          send_all(c, reply("200 OK", "Content-Type: text/event-stream\r\n",
                            "data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {\"choices\":[{\"text\":\"b\",\"finish_reason\":\"length\"}]}\n\n"
                            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n"));
          break;
      }
      ::shutdown(c, SHUT_RDWR);
      ::close(c);
    }
  }

  std::vector<Act> script_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

using Act = ScriptedServer::Act;

HttpOptions fast(const std::string& url, int retries = 4) {
  HttpOptions o;
  o.base_url = url;
  o.api_key = "k-123";
  o.max_retries = retries;
  o.backoff_s = 0.01;
  o.timeout_s = 10;
  return o;
}

TEST(HttpClient, RetriesA503AndADroppedConnectionThenSucceeds) {
  ScriptedServer server({Act::k503, Act::kDrop, Act::kJson});
  HttpClient client(fast(server.url()));
  const json reply = client.post("/v1/completions", {{"model", "m"}, {"prompt", "hi"}});
  EXPECT_EQ(reply["choices"][0]["text"], "fine");
  EXPECT_EQ(server.connections(), 3);
  for (const auto& r : server.requests()) {
    EXPECT_NE(r.find("POST /v1/completions"), std::string::npos) << r;
    EXPECT_NE(r.find("Authorization: Bearer k-123"), std::string::npos) << r;
    EXPECT_NE(r.find(R"("prompt":"hi")"), std::string::npos) << "every try sends the whole body";
  }
}

TEST(HttpClient, StreamRetriesUntilTheFirstEventThenDeliversEveryEvent) {
  ScriptedServer server({Act::k503, Act::kDrop, Act::kStream});
  HttpClient client(fast(server.url()));
  std::string text;
  int events = 0;
  std::chrono::steady_clock::time_point sent{};
  const auto end = client.stream("/v1/completions", {{"model", "m"}, {"prompt", "hi"}}, [&](const json& ev, auto) {
    ++events;
    if (!ev["choices"].empty()) text += ev["choices"][0]["text"].get<std::string>();
  }, &sent);
  EXPECT_TRUE(end.done);
  EXPECT_EQ(events, 3);
  EXPECT_EQ(text, "ab");
  EXPECT_EQ(server.connections(), 3);
  EXPECT_NE(server.requests().back().find(R"("stream":true)"), std::string::npos);
}

TEST(HttpClient, GivesUpAfterItsRetriesWithTheLastReason) {
  ScriptedServer server({Act::k503, Act::k503, Act::k503, Act::kJson});
  HttpClient client(fast(server.url(), 2));
  try {
    client.post("/v1/completions", json::object());
    FAIL() << "three 503s with two retries must fail";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 503);
    EXPECT_EQ(e.attempts(), 3);
    EXPECT_NE(std::string(e.what()).find("HTTP 503: overloaded (after 3 tries)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(server.connections(), 3);
}

TEST(HttpClient, ClientErrorsAreNotRetried) {
  ScriptedServer server({Act::k400, Act::kJson});
  HttpClient client(fast(server.url()));
  try {
    client.post("/v1/completions", json::object());
    FAIL() << "a 400 must fail";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.attempts(), 1);
    EXPECT_NE(std::string(e.what()).find("prompt is too long"), std::string::npos) << e.what();
  }
  EXPECT_EQ(server.connections(), 1);
}

// vLLM answers an unknown model with 404: post() says so in the server's words, post_if_served()
// (asking whether an endpoint exists) takes it as "not served".
TEST(HttpClient, A404KeepsTheServersWords) {
  ScriptedServer server({Act::k404, Act::k404});
  HttpClient client(fast(server.url()));
  try {
    client.post("/v1/completions", json::object());
    FAIL() << "a 404 must fail";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_NE(std::string(e.what()).find("The model `m` does not exist."), std::string::npos) << e.what();
  }
  EXPECT_FALSE(client.post_if_served("/tokenize", json::object()).has_value());
  EXPECT_EQ(server.connections(), 2) << "neither is retried";
}

TEST(HttpClient, WaitsAsLongAsRetryAfterAsks) {
  ScriptedServer server({Act::k503After1s, Act::kJson});
  HttpClient client(fast(server.url()));  // backoff alone would wait about 10 ms
  const auto t0 = std::chrono::steady_clock::now();
  client.post("/v1/completions", json::object());
  EXPECT_GE(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.95);
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClient, RetryAfterAndEndpointPaths) {
  EXPECT_EQ(evals::parse_retry_after("3"), 3.0);
  EXPECT_EQ(evals::parse_retry_after("1.5"), 1.5);
  EXPECT_FALSE(evals::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  EXPECT_FALSE(evals::parse_retry_after("-1"));
  EXPECT_FALSE(evals::parse_retry_after(""));
  EXPECT_EQ(evals::openai_path("/v1", "/completions"), "/v1/completions");
  EXPECT_EQ(evals::openai_path("", "/chat/completions"), "/v1/chat/completions");
  EXPECT_EQ(evals::openai_path("/proxy/v1", "/completions"), "/proxy/v1/completions");
  EXPECT_THROW(HttpClient(fast("localhost:8000")), v4b::UsageError);
}

// A byte-level tokenizer.json of 256 byte tokens plus <s> and </s>: about four times as many tokens
// as DeepSeek's vocabulary gives the same English text.
void write_byte_tokenizer(const std::string& dir) {
  // GPT-2's byte-to-unicode map: printable bytes stand for themselves, the rest move past 255.
  json vocab = json::object();
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
    std::string s;
    if (cp < 0x80) s += static_cast<char>(cp);
    else s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
    vocab[s] = b;
  }
  const json tj = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}},
                   {"added_tokens", {{{"id", 256}, {"content", "<s>"}, {"special", true}}, {{"id", 257}, {"content", "</s>"}, {"special", true}}}},
                   {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}},
                   {"decoder", {{"type", "ByteLevel"}}}};
  std::ofstream(std::filesystem::path(dir) / "tokenizer.json") << tj.dump();
  std::ofstream(std::filesystem::path(dir) / "tokenizer_config.json") << R"({"bos_token": "<s>", "eos_token": "</s>"})";
}

evals::BackendSpec engine_spec(const std::string& model) {
  evals::BackendSpec s;
  s.kind = "engine";
  s.model = model;
  return s;
}

evals::BackendSpec http_spec(const TestServer& server) {
  evals::BackendSpec s;
  s.kind = "http";
  s.model = "v4-tiny";
  s.base_url = server.url() + "/v1";
  s.backoff_s = 0.01;
  return s;
}

// The same checkpoint (with a tokenizer that fits its vocabulary) in process and behind `serve`:
// greedy text, prompt tokens and the served tokenizer agree, streamed or not.
TEST(Backends, EngineAndHttpAgreeOnTheSameWeights) {
  TestServer server({8, 64, 256, {}}, 1024, "", write_byte_tokenizer);
  auto engine = evals::make_backend(engine_spec(server.ckpt));
  auto http = evals::make_backend(http_spec(server));
  evals::GenerateRequest q;
  q.prompt_text = "The quick brown fox jumps over";
  q.max_tokens = 6;
  q.ignore_eos = true;
  const evals::Generation e = engine->generate(q), h = http->generate(q);
  ASSERT_TRUE(e.ok()) << e.error;
  ASSERT_TRUE(h.ok()) << h.error;
  EXPECT_EQ(e.text, h.text);
  EXPECT_EQ(e.prompt_tokens, h.prompt_tokens);
  EXPECT_EQ(e.completion_tokens, 6);
  EXPECT_EQ(h.completion_tokens, 6);
  EXPECT_EQ(e.finish_reason, "length");
  EXPECT_EQ(static_cast<int64_t>(e.itl_s.size()), 5);

  q.stream = true;
  const evals::Generation s = http->generate(q);
  ASSERT_TRUE(s.ok()) << s.error;
  EXPECT_EQ(s.text, e.text);
  EXPECT_GE(s.chunks, 1);
  EXPECT_EQ(s.completion_tokens, 6) << "usage from the stream's last event";

  // The server's /tokenize is the tokenizer the http backend sizes prompts with.
  const auto& served = http->tokens();
  EXPECT_NE(served.describe().find("/tokenize"), std::string::npos) << served.describe();
  EXPECT_EQ(served.encode("Hello world, again"), engine->tokens().encode("Hello world, again"));
  EXPECT_EQ(served.bos_id(), engine->tokens().bos_id());
  const auto ids = engine->tokens().encode("needle in a haystack");
  EXPECT_EQ(served.decode(ids), "needle in a haystack");
  EXPECT_EQ(served.piece(ids[1]), engine->tokens().piece(ids[1]));
}

// GenerateRequest::score and Backend::score give the logits a plain session computes.
TEST(Backends, EngineScoresMatchAPlainSession) {
  auto backend = evals::make_backend(engine_spec("v4-tiny"));
  auto& engine = dynamic_cast<evals::EngineBackend&>(*backend);
  const std::vector<int32_t> prompt = {5, 17, 300, 42, 7, 99}, gold = {11, 12, 13};
  std::vector<float> all;
  engine.new_session({})->prefill(prompt, &all);
  std::vector<int32_t> whole = prompt;
  whole.insert(whole.end(), gold.begin(), gold.end() - 1);
  std::vector<float> forced;
  engine.new_session({})->prefill(whole, &forced);
  const size_t v = static_cast<size_t>(engine.config().vocab);

  evals::GenerateRequest q;
  q.prompt_ids = prompt;
  q.max_tokens = 2;
  q.score = gold;
  const auto g = engine.generate(q);
  ASSERT_TRUE(g.ok()) << g.error;
  ASSERT_EQ(g.scored.size(), gold.size());
  for (size_t i = 0; i < gold.size(); ++i) {
    const size_t row = prompt.size() - 1 + i;  // the logits before gold[i]
    for (size_t k = 0; k < v; k += 37) EXPECT_NEAR(g.scored[i][k], forced[row * v + k], 1e-4) << i << " " << k;
  }
  // Generation continues from the prompt, not from the scored tokens.
  std::vector<float> first(all.end() - static_cast<std::ptrdiff_t>(v), all.end());
  EXPECT_EQ(g.ids[0], static_cast<int32_t>(std::max_element(first.begin(), first.end()) - first.begin()));

  const auto rows = engine.score(prompt, {});
  ASSERT_EQ(rows.size(), prompt.size());
  for (size_t k = 0; k < v; k += 37) EXPECT_EQ(rows.back()[k], first[k]);
}

TEST(Backends, EngineStopsOnDoneAndOnStopStrings) {
  auto engine = evals::make_backend(engine_spec("v4-tiny"));
  evals::GenerateRequest q;
  q.prompt_ids = {1, 2, 3, 4};
  q.max_tokens = 12;
  q.ignore_eos = true;
  const auto full = engine->generate(q);
  ASSERT_TRUE(full.ok()) << full.error;
  ASSERT_EQ(full.ids.size(), 12u);
  q.done = [](const std::string& text) { return !text.empty(); };
  const auto early = engine->generate(q);
  ASSERT_TRUE(early.ok()) << early.error;
  EXPECT_EQ(early.finish_reason, "stop");
  EXPECT_LT(early.ids.size(), full.ids.size());
  EXPECT_EQ(std::vector<int32_t>(full.ids.begin(), full.ids.begin() + static_cast<std::ptrdiff_t>(early.ids.size())), early.ids);
  EXPECT_EQ(early.completion_tokens, static_cast<int64_t>(early.ids.size()));
  // Decoding keeps going for other requests after one stopped early.
  q.done = nullptr;
  EXPECT_EQ(engine->generate(q).ids, full.ids);
}

TEST(Backends, UnknownKindsAndMissingUrlsAreUsageErrors) {
  evals::BackendSpec s;
  s.kind = "grpc";
  EXPECT_THROW(evals::make_backend(s), v4b::UsageError);
  s.kind = "http";
  EXPECT_THROW(evals::make_backend(s), v4b::UsageError);
  s.kind = "engine";
  s.model = "v4-pro";  // published preset: no weights here
  EXPECT_THROW(evals::make_backend(s), v4b::UsageError);
}

TEST(Backends, OneListOfKindsNamesThemInEveryMessage) {
  evals::require_backend_kind("engine");
  evals::require_backend_kind("oracle", {"oracle", "file"});
  auto message = [](const std::string& kind, const std::vector<std::string>& others) {
    try {
      evals::require_backend_kind(kind, others);
    } catch (const v4b::UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("grpc", {}), "unknown --backend 'grpc': expected engine or http");
  EXPECT_EQ(message("oracle", {}), "unknown --backend 'oracle': expected engine or http");
  EXPECT_EQ(message("grpc", {"oracle", "file"}), "unknown --backend 'grpc': expected engine, http, oracle or file");
  // A suite's validation asks the same list (a plan file's params meet it, not CLI11's check).
  evals::ThroughputParams t;
  t.backend = "grpc", t.model = "m", t.concurrency = {1};
  EXPECT_THROW(t.validate(), v4b::UsageError);
}

class ForeignVocabRecall : public ::testing::Test {
 protected:
  CliResult v4(const std::string& args) { return run_cli(args + " --db " + (dir_.path / "r.db").string()); }
  TempDir dir_;
};

// Recall over http against a server whose vocabulary is not DeepSeek's: the prompts are sized with
// the server's /tokenize and fit --ctx there; sized in DeepSeek's tokens instead they do not, and
// the failed case stores and prints the server's reason.
TEST_F(ForeignVocabRecall, PromptsFitTheContextInTheServersTokens) {
  TestServer server({8, 64, 256, {}}, 1024, "", write_byte_tokenizer);
  const std::string base = fmt::format("run recall --backend http --base-url {}/v1 --model v4-tiny --tasks niah --ctx 1k --depths 50 "
                                       "--max-new-tokens 4 --format json",
                                       server.url());
  const CliResult ok = v4(base);
  ASSERT_EQ(ok.status, 0) << ok.err << ok.out;
  const json rows = json::parse(ok.out)["rows"];
  ASSERT_EQ(rows.size(), 1u);
  const double prompt_tokens = rows[0]["prompt_tokens"].get<double>();  // the server's own count (usage)
  EXPECT_LE(prompt_tokens + 4, 1024);
  EXPECT_GT(prompt_tokens, 900) << "the haystack fills the context";

  const std::string deepseek = (std::filesystem::path(V4B_SOURCE_DIR) / "datasets/tokenizer/deepseek_v3").string();
  const CliResult wrong = v4(base + " --tokenizer " + deepseek);
  EXPECT_EQ(wrong.status, 1) << wrong.err;
  EXPECT_NE(wrong.err.find("maximum context length"), std::string::npos) << "the reason is printed: " << wrong.err;
  store::Store db((dir_.path / "r.db").string());
  const auto cases = db.cases(2);
  ASSERT_EQ(cases.size(), 1u);
  EXPECT_EQ(cases[0].status, "failed");
  EXPECT_NE(views::failure_reason(cases[0]).find("maximum context length"), std::string::npos) << views::failure_reason(cases[0]);
}

}  // namespace
}  // namespace v4b::test

namespace v4b::test {
namespace {

// The same recall, coding and throughput runs through --backend engine (the checkpoint in process)
// and --backend http (`serve` of that checkpoint): greedy answers agree sample by sample.
class SameRunsOnBothBackends : public ::testing::Test {
 protected:
  CliResult v4(const std::string& args, const std::string& db) { return run_cli(args + " --db " + (dir_.path / db).string()); }
  std::vector<store::CaseRecord> cases(const std::string& db) {
    store::Store s((dir_.path / db).string());
    return s.cases(1);
  }
  // Each stored sample's `field`, by case key and sample index.
  std::map<std::string, std::string> by_sample(const std::string& db, const char* field) {
    std::map<std::string, std::string> out;
    for (const auto& c : cases(db))
      for (const auto& s : c.samples)
        if (s.details.contains(field)) out[c.key + "#" + std::to_string(s.index)] = s.details[field].dump();
    return out;
  }
  TempDir dir_;
  TestServer server_{{8, 64, 256, {}}, 1024, "", write_byte_tokenizer};
  std::string http_ = fmt::format("--backend http --base-url {}/v1 --model v4-tiny", server_.url());
};

TEST_F(SameRunsOnBothBackends, Recall) {
  const std::string args = "run recall --tasks niah,niah_single_1 --ctx 1000 --depths 20,80 --n 2 --max-new-tokens 5 --attention native --format json ";
  const CliResult e = v4(args + "--backend engine --model " + server_.ckpt, "e.db");
  const CliResult h = v4(args + http_, "h.db");
  ASSERT_EQ(e.status, 0) << e.err;
  ASSERT_EQ(h.status, 0) << h.err;
  const auto pe = by_sample("e.db", "prediction"), ph = by_sample("h.db", "prediction");
  ASSERT_EQ(pe.size(), 6u);  // 2 NIAH depths + 1 niah_single_1 cell, 2 samples each
  EXPECT_EQ(pe, ph);
  EXPECT_EQ(by_sample("e.db", "prompt_hash"), by_sample("h.db", "prompt_hash")) << "the same prompts, sized in the same tokens";
}

TEST_F(SameRunsOnBothBackends, Coding) {
  const std::string args = "run coding --dataset humaneval --problems HumanEval/0,HumanEval/2 --n 1 --k 1 "
                           "--max-new-tokens 12 --time-floor 1 --format json ";
  const CliResult e = v4(args + "--backend engine --model " + server_.ckpt, "e.db");
  const CliResult h = v4(args + http_ + " --api completions", "h.db");
  ASSERT_NE(e.out.find("\"run_id\""), std::string::npos) << e.err;
  ASSERT_NE(h.out.find("\"run_id\""), std::string::npos) << h.err;
  const auto oe = by_sample("e.db", "program"), oh = by_sample("h.db", "program");
  ASSERT_EQ(oe.size(), 2u);
  EXPECT_EQ(oe, oh);
}

TEST_F(SameRunsOnBothBackends, Throughput) {
  const std::string args = "run throughput --concurrency 2 --num-prompts 3 --warmup 0 --input-len 10 --output-len 4 --ignore-eos --format json ";
  for (const std::string& backend : {"--backend engine --model " + server_.ckpt, http_}) {
    const CliResult r = v4(args + backend, "t.db");
    ASSERT_EQ(r.status, 0) << r.err;
    const json row = json::parse(r.out)["rows"][0];
    EXPECT_EQ(row["completed"], 3.0) << backend;
    EXPECT_EQ(row["total_output_tokens"], 12.0) << backend;
  }
}

}  // namespace
}  // namespace v4b::test

namespace v4b::test {
namespace {

// llama.cpp's server: /tokenize takes {"content", "add_special"}, /detokenize answers "content".
// Its tokens here are bytes, with BOS 1 when special tokens are asked for.
TEST(ServerCodec, SpeaksLlamaCppsDialectWhenThePromptFieldIsRefused) {
  httplib::Server server;
  server.Post("/tokenize", [](const httplib::Request& req, httplib::Response& res) {
    const json b = json::parse(req.body);
    if (!b.contains("content")) {
      res.status = 400;
      res.set_content(R"({"error":{"message":"\"content\" must be provided"}})", "application/json");
      return;
    }
    json ids = json::array();
    if (b.value("add_special", false)) ids.push_back(1);
    for (unsigned char ch : b["content"].get<std::string>()) ids.push_back(static_cast<int>(ch));
    res.set_content(json{{"tokens", ids}}.dump(), "application/json");
  });
  server.Post("/detokenize", [](const httplib::Request& req, httplib::Response& res) {
    const json b = json::parse(req.body);
    std::string text;
    for (const auto& id : b["tokens"]) text += static_cast<char>(id.get<int>());
    res.set_content(json{{"content", text}}.dump(), "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread th([&] { server.listen_after_bind(); });
  {
    HttpClient client(fast(fmt::format("http://127.0.0.1:{}/v1", port)));
    const auto codec = evals::server_codec_if_served(client, "m");
    ASSERT_NE(codec, nullptr);
    EXPECT_EQ(codec->bos_id(), 1);
    EXPECT_EQ(codec->encode("hi!"), (std::vector<int32_t>{'h', 'i', '!'}));
    EXPECT_EQ(codec->decode(std::vector<int32_t>{'o', 'k'}), "ok");
    EXPECT_EQ(codec->piece('x'), "x");
    EXPECT_NE(codec->describe().find("llama.cpp"), std::string::npos);
  }
  server.stop();
  th.join();
}

TEST(ServerCodec, NoneWhereTheServerHasNoTokenizeEndpoint) {
  httplib::Server missing;  // answers 404 to everything
  const int port = missing.bind_to_any_port("127.0.0.1");
  std::thread th([&] { missing.listen_after_bind(); });
  HttpClient client(fast(fmt::format("http://127.0.0.1:{}/v1", port)));
  EXPECT_EQ(evals::server_codec_if_served(client, "m"), nullptr);
  missing.stop();
  th.join();
}

}  // namespace
}  // namespace v4b::test
