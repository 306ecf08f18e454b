// An OpenAI-compatible server on v4-tiny, in this process, on 127.0.0.1 and a free port the OS
// picks, for the serve and throughput tests; plus small HTTP helpers.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/io/tokenizer.h"
#include "engine/models/presets.h"
#include "engine/runtime/engine.h"
#include "engine/synth/synth.h"
#include "evals/serve/openai_server.h"
#include "tests/test_util.h"

namespace v4b::test {

struct TestServer {
  // `prepare`, when given, may add files to the checkpoint (a tokenizer.json of its own, served then).
  explicit TestServer(evals::SchedulerOptions so = {8, 64, 256, {}}, int64_t max_model_len = 1024, std::string api_key = "",
                      const std::function<void(const std::string& checkpoint)>& prepare = {}) {
    ckpt = (dir.path / "v4-tiny").string();
    write_synthetic_checkpoint(preset_config_json("v4-tiny"), ckpt, 0);
    if (prepare) prepare(ckpt);
    engine = Engine::load(ckpt);
    evals::ServerOptions o;
    o.model_name = "v4-tiny";
    o.max_model_len = max_model_len;
    o.drain_timeout = std::chrono::milliseconds(2000);
    o.api_key = std::move(api_key);
    server = std::make_unique<evals::OpenAiServer>(*engine, prepare ? Tokenizer::for_checkpoint(ckpt) : Tokenizer::load(), so, o);
    port = server->bind("127.0.0.1", 0);
    thread = std::thread([this] { server->run(); });
  }
  ~TestServer() {
    server->shutdown();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    return c;
  }

  TempDir dir;
  std::string ckpt;  // the served checkpoint
  std::unique_ptr<Engine> engine;
  std::unique_ptr<evals::OpenAiServer> server;
  int port = 0;
  std::thread thread;
};

struct HttpReply {
  int status = 0;
  std::string body;
  nlohmann::json json;  // discarded when the body is not JSON
};

inline HttpReply post_json(const TestServer& s, const std::string& path, const std::string& body) {
  auto c = s.client();
  auto r = c.Post(path.c_str(), body, "application/json");
  HttpReply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.json = nlohmann::json::parse(r->body, nullptr, false);
  return out;
}

inline HttpReply get_json(const TestServer& s, const std::string& path) {
  auto c = s.client();
  auto r = c.Get(path.c_str());
  HttpReply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.json = nlohmann::json::parse(r->body, nullptr, false);
  return out;
}

// The data payloads of an SSE body, "[DONE]" included.
inline std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t eol = body.find('\n', pos);
    if (eol == std::string::npos) eol = body.size();
    const std::string line = body.substr(pos, eol - pos);
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
    pos = eol + 1;
  }
  return out;
}

}  // namespace v4b::test
