// `v4bench serve`: the OpenAI-compatible endpoints on v4-tiny, streaming equal to non-streaming,
// OpenAI-shaped errors for bad requests, a client that disconnects mid-stream, 100 connections at
// once, and a SIGTERM that drains a running stream before the process exits 0.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/serve_util.h"

using nlohmann::json;
using v4b::test::get_json;
using v4b::test::post_json;
using v4b::test::sse_payloads;
using v4b::test::TestServer;

namespace {

class ServeApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server = new TestServer(); }
  static void TearDownTestSuite() {
    delete server;
    server = nullptr;
  }
  static TestServer* server;

  static void expect_serving() {
    const auto r = post_json(*server, "/v1/completions", R"({"model":"v4-tiny","prompt":"still there?","max_tokens":3,"ignore_eos":true})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json["usage"]["completion_tokens"], 3);
  }
};
TestServer* ServeApi::server = nullptr;

}  // namespace

TEST_F(ServeApi, ModelsHealthAndTokenizeAgreeWithUsage) {
  const auto h = get_json(*server, "/health");
  ASSERT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(h.json["status"], "ok");
  const auto m = get_json(*server, "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.json["object"], "list");
  EXPECT_EQ(m.json["data"][0]["id"], "v4-tiny");
  EXPECT_EQ(m.json["data"][0]["max_model_len"], 1024);
  EXPECT_EQ(m.json["data"][0]["numerics"], "official");  // the default of DeepSeek-V4 checkpoints

  const std::string prompt = "The quick brown fox jumps over the lazy dog.";
  const auto t = post_json(*server, "/tokenize", json{{"prompt", prompt}}.dump());
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(t.json["count"], t.json["tokens"].size());
  EXPECT_EQ(t.json["tokens"][0], 0) << "BOS first";
  for (const auto& id : t.json["tokens"]) EXPECT_LT(id.get<int>(), 512) << "ids folded into v4-tiny's vocabulary";
  const auto c = post_json(*server, "/v1/completions", json{{"model", "v4-tiny"}, {"prompt", prompt}, {"max_tokens", 2}}.dump());
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(c.json["usage"]["prompt_tokens"], t.json["count"]);
  EXPECT_EQ(c.json["object"], "text_completion");

  // The same prompt as token ids is the same request.
  const auto ids = post_json(*server, "/v1/completions",
                             json{{"model", "v4-tiny"}, {"prompt", t.json["tokens"]}, {"max_tokens", 2}, {"temperature", 0}}.dump());
  const auto txt = post_json(*server, "/v1/completions",
                             json{{"model", "v4-tiny"}, {"prompt", prompt}, {"max_tokens", 2}, {"temperature", 0}}.dump());
  ASSERT_EQ(ids.status, 200) << ids.body;
  EXPECT_EQ(ids.json["choices"][0]["text"], txt.json["choices"][0]["text"]);
}

TEST_F(ServeApi, StreamingEqualsNonStreamingForGreedyRequests) {
  for (const std::string path : {"/v1/completions", "/v1/chat/completions"}) {
    const bool chat = path.find("chat") != std::string::npos;
    json req = {{"model", "v4-tiny"}, {"temperature", 0}, {"max_tokens", 40}, {"return_token_ids", true}};
    if (chat) req["messages"] = json::array({{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hello!"}}});
    else req["prompt"] = "Once upon a time";
    const auto plain = post_json(*server, path, req.dump());
    ASSERT_EQ(plain.status, 200) << plain.body;
    const json& choice = plain.json["choices"][0];
    const std::string want = chat ? choice["message"]["content"].get<std::string>() : choice["text"].get<std::string>();
    const auto want_ids = choice["token_ids"].get<std::vector<int>>();
    ASSERT_FALSE(want_ids.empty());
    EXPECT_EQ(plain.json["usage"]["completion_tokens"], want_ids.size());

    req["stream"] = true;
    req["stream_options"] = {{"include_usage", true}};
    auto cli = server->client();
    auto r = cli.Post(path.c_str(), req.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
    const auto events = sse_payloads(r->body);
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.back(), "[DONE]");
    std::string got;
    std::vector<int> got_ids;
    json usage, finish;
    size_t token_events = 0;
    for (size_t i = 0; i + 1 < events.size(); ++i) {
      const json e = json::parse(events[i]);
      if (e.contains("usage")) {
        EXPECT_TRUE(e["choices"].empty()) << "usage comes in its own final chunk";
        EXPECT_EQ(i + 2, events.size()) << "the usage chunk is the last before [DONE]";
        usage = e["usage"];
        continue;
      }
      const json& c = e["choices"][0];
      got += chat ? c["delta"]["content"].get<std::string>() : c["text"].get<std::string>();
      for (int id : c["token_ids"]) got_ids.push_back(id);
      if (chat && token_events == 0) {
        EXPECT_EQ(c["delta"]["role"], "assistant");
      }
      if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
      ++token_events;
    }
    EXPECT_EQ(got, want) << path;
    EXPECT_EQ(got_ids, want_ids) << path;
    EXPECT_EQ(token_events, want_ids.size()) << "one event per token";
    EXPECT_EQ(finish, choice["finish_reason"]);
    EXPECT_EQ(usage["completion_tokens"], want_ids.size());
    EXPECT_EQ(usage["prompt_tokens"], plain.json["usage"]["prompt_tokens"]);
  }
}

TEST_F(ServeApi, StopStringsEndTheTextAndTheGenerationAlikeWhenStreamed) {
  json req = {{"model", "v4-tiny"}, {"prompt", "Once upon a time"}, {"temperature", 0}, {"max_tokens", 40}, {"ignore_eos", true},
              {"return_token_ids", true}};
  const auto full = post_json(*server, "/v1/completions", req.dump());
  ASSERT_EQ(full.status, 200) << full.body;
  const std::string text = full.json["choices"][0]["text"];
  ASSERT_GT(text.size(), 12u) << text;
  // A stop string taken from the middle of the free-running text (plus one that never occurs).
  auto char_start = [&](size_t p) {
    while (p < text.size() && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) ++p;
    return p;
  };
  const size_t from = char_start(text.size() / 2), to = char_start(char_start(from + 1) + 1);  // two characters
  ASSERT_LT(from, to);
  const std::string stop = text.substr(from, to - from);
  const std::string want = text.substr(0, text.find(stop));
  req["stop"] = json::array({"\u0001never", stop});
  const auto cut = post_json(*server, "/v1/completions", req.dump());
  ASSERT_EQ(cut.status, 200) << cut.body;
  const json& choice = cut.json["choices"][0];
  EXPECT_EQ(choice["text"], want);
  EXPECT_EQ(choice["finish_reason"], "stop");
  const int64_t n_cut = cut.json["usage"]["completion_tokens"];
  EXPECT_LT(n_cut, 40) << "the generation ended at the stop string";
  EXPECT_EQ(choice["token_ids"].size(), static_cast<size_t>(n_cut));

  req["stream"] = true;
  req["stream_options"] = {{"include_usage", true}};
  auto cli = server->client();
  auto r = cli.Post("/v1/completions", req.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto events = sse_payloads(r->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string got;
  json finish, usage;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json e = json::parse(events[i]);
    if (e.contains("usage")) {
      usage = e["usage"];
      continue;
    }
    got += e["choices"][0]["text"].get<std::string>();
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(finish, "stop");
  EXPECT_EQ(usage["completion_tokens"], n_cut);
  expect_serving();
}

TEST_F(ServeApi, BadRequestsGetOpenAiErrorsAndTheServerKeepsServing) {
  struct Bad {
    std::string path, body;
    int status;
    std::string needle;  // in the message, or the code
  };
  std::string long_prompt = "[";
  for (int i = 0; i < 1100; ++i) {
    if (i) long_prompt += ',';
    long_prompt += std::to_string(i % 500);
  }
  long_prompt += "]";
  const std::vector<Bad> cases = {
      {"/v1/completions", "{\"model\": \"v4-tiny\", \"prompt\": ", 400, "not valid JSON"},
      {"/v1/completions", "[1, 2, 3]", 400, "JSON object"},
      {"/v1/completions", R"({"prompt": "hi"})", 400, "'model'"},
      {"/v1/completions", R"({"model": "gpt-4", "prompt": "hi"})", 404, "model_not_found"},
      {"/v1/completions", R"({"model": "v4-tiny"})", 400, "'prompt'"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": 5})", 400, "'prompt'"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": [1, 99999]})", 400, "outside the vocabulary"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": ["a", "b"]})", 400, "batched prompts"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": "hi", "max_tokens": "ten"})", 400, "integer"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": "hi", "max_tokens": 1000000000000})", 400, "context_length_exceeded"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": "hi", "max_tokens": 0})", 400, "max_tokens"},
      {"/v1/completions", R"({"model": "v4-tiny", "max_tokens": 1, "prompt": )" + long_prompt + "}", 400, "context_length_exceeded"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": "hi", "temperature": -1})", 400, "temperature"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": "hi", "n": 2})", 400, "'n'"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": "hi", "stop": [1]})", 400, "'stop'"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": "hi", "stop": {"a": 1}})", 400, "'stop'"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": "hi", "stream_options": {"include_usage": true}})", 400, "stream"},
      {"/v1/chat/completions", R"({"model": "v4-tiny"})", 400, "'messages'"},
      {"/v1/chat/completions", R"({"model": "v4-tiny", "messages": [{"role": "robot", "content": "x"}]})", 400, "robot"},
      {"/v1/chat/completions", R"({"model": "v4-tiny", "messages": [{"content": "x"}]})", 400, "role"},
      {"/v1/nothing", "{}", 404, "no route"},
      {"/v1/completions", "", 400, "empty"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": "hi", "logprobs": 21})", 400, "logprobs"},
      {"/v1/completions", R"({"model": "v4-tiny", "prompt": "hi", "echo": true, "stream": true})", 400, "stream"},
      {"/v1/chat/completions", R"({"model": "v4-tiny", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", 400,
       "'logprobs': true"},
      {"/v1/chat/completions", R"({"model": "v4-tiny", "messages": [{"role": "user", "content": "x"}], "echo": true})", 400, "echo"},
  };
  for (const auto& b : cases) {
    const auto r = post_json(*server, b.path, b.body);
    EXPECT_EQ(r.status, b.status) << b.body << " -> " << r.body;
    ASSERT_FALSE(r.json.is_discarded()) << "error bodies are JSON: " << r.body;
    ASSERT_TRUE(r.json.contains("error")) << r.body;
    const json& e = r.json["error"];
    EXPECT_TRUE(e["message"].is_string());
    EXPECT_TRUE(e["type"].is_string());
    EXPECT_TRUE(e.contains("param") && e.contains("code"));
    const std::string all = e["message"].get<std::string>() + " " + (e["code"].is_string() ? e["code"].get<std::string>() : "");
    EXPECT_NE(all.find(b.needle), std::string::npos) << b.body << " -> " << r.body;
    EXPECT_EQ(all.find("json.exception"), std::string::npos) << "no library internals: " << r.body;
  }
  expect_serving();
}

TEST_F(ServeApi, ModelByIdDeveloperRoleAndUniqueIds) {
  const auto m = get_json(*server, "/v1/models/v4-tiny");
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(m.json["id"], "v4-tiny");
  EXPECT_GT(m.json["created"].get<int64_t>(), 1700000000);
  const auto none = get_json(*server, "/v1/models/gpt-4");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(none.json["error"]["code"], "model_not_found");
  const json chat = {{"model", "v4-tiny"}, {"max_tokens", 2}, {"temperature", 0},
                     {"messages", {{{"role", "developer"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi"}}}}};
  const auto a = post_json(*server, "/v1/chat/completions", chat.dump());
  ASSERT_EQ(a.status, 200) << a.body;
  // A developer message is the system message under OpenAI's newer name: the same prompt.
  json as_system = chat;
  as_system["messages"][0]["role"] = "system";
  const auto b = post_json(*server, "/v1/chat/completions", as_system.dump());
  EXPECT_EQ(a.json["usage"]["prompt_tokens"], b.json["usage"]["prompt_tokens"]);
  EXPECT_EQ(a.json["choices"][0]["message"]["content"], b.json["choices"][0]["message"]["content"]);
  EXPECT_NE(a.json["id"], b.json["id"]);
  EXPECT_GT(a.json["created"].get<int64_t>(), 1700000000);
}

// Completions logprobs (with echo) and chat top_logprobs carry the engine's own log-probabilities:
// those `v4bench generate --logprobs` prints for the same tokens of the same checkpoint.
TEST_F(ServeApi, LogprobsAndEchoAgreeWithGenerate) {
  const std::vector<int> prompt = {0, 17, 230, 5, 88, 301, 42, 7};
  std::string ids_arg;
  for (int id : prompt) ids_arg += (ids_arg.empty() ? "" : ",") + std::to_string(id);
  const auto gen = v4b::test::run_cli("generate --model " + server->ckpt + " --prompt-ids " + ids_arg + " -n 4 --logprobs 3 --format json");
  ASSERT_EQ(gen.status, 0) << gen.err;
  const json g = json::parse(gen.out);
  const json& glp = g["logprobs"];
  ASSERT_EQ(glp.size(), 4u);

  // Greedy completion of the same ids: the same tokens, their log-probabilities and top 3.
  const auto c = post_json(*server, "/v1/completions",
                           json{{"model", "v4-tiny"}, {"prompt", prompt}, {"max_tokens", 4}, {"temperature", 0}, {"ignore_eos", true},
                                {"logprobs", 3}, {"return_token_ids", true}}
                               .dump());
  ASSERT_EQ(c.status, 200) << c.body;
  const json& lp = c.json["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), 4u) << c.body;
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(c.json["choices"][0]["token_ids"][i], glp[i]["token"]);
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), glp[i]["logprob"].get<double>(), 1e-4) << i;
    // Keyed by token text, as OpenAI's shape is: two ids with the same text share an entry.
    ASSERT_GE(lp["top_logprobs"][i].size(), 1u);
    ASSERT_LE(lp["top_logprobs"][i].size(), 3u);
    double best = -1e9;
    for (const auto& [tok, v] : lp["top_logprobs"][i].items()) best = std::max(best, v.get<double>());
    EXPECT_NEAR(best, glp[i]["top"][0][1].get<double>(), 1e-4);
    EXPECT_GE(lp["text_offset"][i].get<int64_t>(), 0);
  }

  // Echo scores the prompt itself: the first token has no context (null), the others their
  // log-probability after the tokens before them. Scoring prompt + the generated tokens this way
  // (a prefill) gives what decoding them gave, to the agreement of prefill and decode.
  std::vector<int> scored = prompt;
  for (size_t i = 0; i + 1 < 4; ++i) scored.push_back(glp[i]["token"].get<int>());
  const auto e = post_json(*server, "/v1/completions",
                           json{{"model", "v4-tiny"}, {"prompt", scored}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 1},
                                {"prompt_logprobs", 2}}
                               .dump());
  ASSERT_EQ(e.status, 200) << e.body;
  const json& el = e.json["choices"][0]["logprobs"];
  ASSERT_EQ(el["token_logprobs"].size(), scored.size()) << e.body;
  EXPECT_TRUE(el["token_logprobs"][0].is_null());
  EXPECT_TRUE(el["top_logprobs"][0].is_null());
  EXPECT_EQ(e.json["usage"]["completion_tokens"], 0);
  for (size_t i = 0; i + 1 < 4; ++i)
    EXPECT_NEAR(el["token_logprobs"][prompt.size() + i].get<double>(), glp[i]["logprob"].get<double>(), 0.05) << i;
  // vLLM's prompt_logprobs: null first, then the prompt token's own entry with its rank.
  const json& pl = e.json["choices"][0]["prompt_logprobs"];
  ASSERT_EQ(pl.size(), scored.size());
  EXPECT_TRUE(pl[0].is_null());
  const json& own = pl[prompt.size()][std::to_string(scored[prompt.size()])];
  EXPECT_EQ(own["rank"], 1);  // a greedy token is the most likely one
  EXPECT_NEAR(own["logprob"].get<double>(), el["token_logprobs"][prompt.size()].get<double>(), 1e-12);

  // Chat: logprobs + top_logprobs in OpenAI's chat shape, each token the top alternative (greedy).
  const json chat = {{"model", "v4-tiny"}, {"max_tokens", 3}, {"temperature", 0}, {"ignore_eos", true}, {"logprobs", true},
                     {"top_logprobs", 2}, {"return_token_ids", true}, {"messages", {{{"role", "user"}, {"content", "Hello"}}}}};
  const auto ch = post_json(*server, "/v1/chat/completions", chat.dump());
  ASSERT_EQ(ch.status, 200) << ch.body;
  const json& content = ch.json["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 3u) << ch.body;
  const auto tok = post_json(*server, "/tokenize", json{{"messages", chat["messages"]}}.dump());
  std::string chat_ids;
  for (const auto& id : tok.json["tokens"]) chat_ids += (chat_ids.empty() ? "" : ",") + std::to_string(id.get<int>());
  const auto gen_chat = v4b::test::run_cli("generate --model " + server->ckpt + " --prompt-ids " + chat_ids + " -n 3 --logprobs 2 --format json");
  ASSERT_EQ(gen_chat.status, 0) << gen_chat.err;
  const json gc = json::parse(gen_chat.out)["logprobs"];
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(content[i]["logprob"].get<double>(), gc[i]["logprob"].get<double>(), 1e-4) << i;
    ASSERT_EQ(content[i]["top_logprobs"].size(), 2u);
    EXPECT_NEAR(content[i]["top_logprobs"][0]["logprob"].get<double>(), content[i]["logprob"].get<double>(), 1e-12);
    EXPECT_TRUE(content[i]["bytes"].is_array());
  }
}

TEST_F(ServeApi, StreamedLogprobsMatchTheAnswerInOnePiece) {
  const json body = {{"model", "v4-tiny"}, {"prompt", "Once upon"}, {"max_tokens", 5}, {"temperature", 0}, {"ignore_eos", true}, {"logprobs", 2}};
  const auto whole = post_json(*server, "/v1/completions", body.dump());
  ASSERT_EQ(whole.status, 200) << whole.body;
  json streamed = body;
  streamed["stream"] = true;
  auto c = server->client();
  auto r = c.Post("/v1/completions", streamed.dump(), "application/json");
  ASSERT_TRUE(r);
  std::vector<double> lps;
  std::vector<int64_t> offsets;
  for (const auto& p : v4b::test::sse_payloads(r->body)) {
    if (p == "[DONE]") continue;
    const json j = json::parse(p);
    const json& l = j["choices"][0]["logprobs"];
    ASSERT_FALSE(l.is_null()) << p;
    lps.push_back(l["token_logprobs"][0]);
    offsets.push_back(l["text_offset"][0]);
  }
  const json& w = whole.json["choices"][0]["logprobs"];
  ASSERT_EQ(lps.size(), w["token_logprobs"].size());
  for (size_t i = 0; i < lps.size(); ++i) {
    EXPECT_DOUBLE_EQ(lps[i], w["token_logprobs"][i].get<double>()) << i;
    EXPECT_EQ(offsets[i], w["text_offset"][i].get<int64_t>()) << i;
  }
}

TEST_F(ServeApi, ClientDisconnectingMidStreamFreesItsRequest) {
  const int64_t cancelled_before = get_json(*server, "/health").json["cancelled"];
  auto cli = server->client();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = R"({"model":"v4-tiny","prompt":"go on","max_tokens":1000,"ignore_eos":true,"stream":true})";
  req.set_header("Content-Type", "application/json");
  int events = 0;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    events += static_cast<int>(std::count(data, data + n, '\n')) / 2;
    return events < 3;  // hang up after a few tokens
  };
  httplib::Response res;
  httplib::Error err;
  EXPECT_FALSE(cli.send(req, res, err));
  EXPECT_EQ(err, httplib::Error::Canceled);
  // The scheduler drops the request at its next token instead of generating all 1000.
  json h;
  for (int i = 0; i < 200; ++i) {
    h = get_json(*server, "/health").json;
    if (h["cancelled"].get<int64_t>() > cancelled_before && h["active"] == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(h["cancelled"].get<int64_t>(), cancelled_before + 1) << h.dump();
  EXPECT_EQ(h["active"], 0) << h.dump();
  expect_serving();
}

TEST_F(ServeApi, HundredConcurrentConnectionsAreAnsweredOrRefusedCleanly) {
  // 8 decode together and 64 may wait, so some of the 100 may be refused with 503.
  std::atomic<int> ok{0}, refused{0}, bad{0};
  std::mutex mu;
  std::vector<std::string> why;
  auto fail = [&](std::string w) {
    ++bad;
    std::lock_guard lk(mu);
    why.push_back(std::move(w));
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 100; ++i)
    clients.emplace_back([&, i] {
      json req = {{"model", "v4-tiny"}, {"prompt", "request " + std::to_string(i)}, {"max_tokens", 4}, {"ignore_eos", true}};
      if (i % 2) req["stream"] = true, req["stream_options"] = {{"include_usage", true}};
      auto cli = server->client();
      auto r = cli.Post("/v1/completions", req.dump(), "application/json");
      if (!r) return fail("no response: " + httplib::to_string(r.error()) + (i % 2 ? " stream" : " plain"));
      if (r->status == 200) {
        json usage;
        if (i % 2) {
          const auto ev = sse_payloads(r->body);
          if (ev.size() >= 2 && ev.back() == "[DONE]") usage = json::parse(ev[ev.size() - 2]).value("usage", json());
        } else {
          usage = json::parse(r->body, nullptr, false).value("usage", json());
        }
        if (usage.is_object() && usage["completion_tokens"] == 4) ++ok;
        else fail("wrong usage: " + r->body.substr(0, 300));
      } else if (r->status == 503 && json::parse(r->body, nullptr, false).contains("error")) {
        ++refused;
      } else {
        fail(std::to_string(r->status) + ": " + r->body.substr(0, 300));
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(bad, 0) << ::testing::PrintToString(why);
  EXPECT_EQ(ok + refused, 100);
  // A refusal means 64 accepted requests were queued at that moment, and each of them is served.
  EXPECT_GE(ok, 64) << "at least a full queue's worth is served";
  expect_serving();
}

// The CLI: --port 0 prints the port; SIGTERM lets a running stream finish, then exits 0.
TEST(ServeCli, SigtermDrainsRunningStreamsAndExitsZero) {
  v4b::test::TempDir dir;
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    setenv("V4BENCH_CACHE_DIR", (dir.path / "cache").c_str(), 1);
    execl(V4BENCH_BIN, V4BENCH_BIN, "serve", "--model", "v4-tiny", "--host", "127.0.0.1", "--port", "0", "--threads", "1",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string text;
  std::smatch m;
  const std::regex listening(R"(http://127\.0\.0\.1:(\d+))");
  for (int waited = 0; !std::regex_search(text, m, listening) && waited < 120; ++waited) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 1000) > 0) {
      char buf[512];
      const ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
  }
  ASSERT_TRUE(std::regex_search(text, m, listening)) << text;
  const int port = std::stoi(m[1]);

  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(60, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = R"({"model":"v4-tiny","prompt":"drain me","max_tokens":200,"ignore_eos":true,"stream":true,
                 "stream_options":{"include_usage":true}})";
  req.set_header("Content-Type", "application/json");
  std::string body;
  bool signalled = false;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    body.append(data, n);
    if (!signalled) kill(pid, SIGTERM), signalled = true;  // after the first token
    return true;
  };
  httplib::Response res;
  httplib::Error err;
  ASSERT_TRUE(cli.send(req, res, err)) << httplib::to_string(err);
  const auto ev = sse_payloads(body);
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev.back(), "[DONE]");
  EXPECT_EQ(json::parse(ev[ev.size() - 2])["usage"]["completion_tokens"], 200) << "the running stream finished";

  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  char buf[512];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  EXPECT_NE(text.find("stopped"), std::string::npos) << text;
}
