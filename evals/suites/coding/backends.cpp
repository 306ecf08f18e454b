#include "evals/suites/coding/backends.h"

#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "engine/core/errors.h"
#include "engine/core/hashing.h"
#include "evals/backends/base_url.h"
#include "engine/io/tokenizer.h"
#include "engine/models/presets.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/sampler.h"
#include "evals/suites/numerics.h"

namespace v4b::evals::coding {

namespace {

using nlohmann::json;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// HumanEval's stop sequences: a new top-level statement ends the function being completed.
const std::vector<std::string>& stop_sequences() {
  static const std::vector<std::string> stops = {"\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert "};
  return stops;
}

class OracleBackend : public Backend {
 public:
  std::vector<Generated> generate(const Problem& p, int n, uint64_t) override {
    return std::vector<Generated>(static_cast<size_t>(n), Generated{p.canonical, "", json::object()});
  }
};

class FileBackend : public Backend {
 public:
  FileBackend(const std::string& path, const std::vector<Problem>& problems) {
    for (auto& [task, program] : read_samples_file(path, problems)) by_task_[task].push_back(std::move(program));
  }
  std::vector<Generated> generate(const Problem& p, int, uint64_t) override {
    std::vector<Generated> out;
    for (const auto& program : by_task_[p.task_id]) out.push_back({program, "", json::object()});
    return out;
  }

 private:
  std::map<std::string, std::vector<std::string>> by_task_;
};

class EngineBackend : public Backend {
 public:
  EngineBackend(const std::string& model, int64_t max_new, double temperature, double top_p, uint64_t seed, Numerics numerics)
      : max_new_(max_new), temperature_(temperature), top_p_(top_p), numerics_(numerics) {
    const bool dir = std::filesystem::is_directory(model);
    const bool synthetic = !dir && preset_config_json(model).value("synthetic", false);
    if (!dir && !synthetic)
      throw UsageError(fmt::format("--model {} has no weights here: the engine backend needs a checkpoint directory or a synthetic preset", model));
    engine_ = Engine::open(model, {}, seed);
    tok_ = std::make_unique<Tokenizer>(Tokenizer::for_checkpoint(model));
    vocab_ = engine_->config().vocab;
    eos_ = engine_->config().eos_token_id;
    // Synthetic presets have toy vocabularies: prompt ids are folded into them (their output is
    // noise anyway). A checkpoint must match its tokenizer.
    fold_ = tok_->vocab_size() > vocab_;
    if (fold_ && !synthetic)
      throw UsageError(fmt::format("the tokenizer has {} ids but {} has a vocabulary of {}", tok_->vocab_size(), model, vocab_));
  }

  std::vector<Generated> generate(const Problem& p, int n, uint64_t seed) override {
    std::vector<int32_t> prompt = tok_->encode(p.prompt, /*add_bos=*/true);
    if (fold_)
      for (auto& id : prompt) id = static_cast<int32_t>(id % vocab_);
    std::vector<Generated> out;
    for (int i = 0; i < n; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      auto session = engine_->new_session({AttentionMode::kNative, KvFormat::kBf16, false, numerics_});
      std::span<const float> logits = session->prefill(prompt);
      Sampler sampler({temperature_, 0, top_p_, sample_seed(seed, p.task_id, i)});
      std::vector<int32_t> ids;
      std::string finish = "length";
      for (int64_t step = 0; step < max_new_; ++step) {
        const int32_t t = sampler.sample(logits);
        if (t == eos_) {
          finish = "eos";
          break;
        }
        ids.push_back(t);
        if (p.code_prompt && step % 8 == 7 && truncate_completion(tok_->decode(ids)).size() < tok_->decode(ids).size()) {
          finish = "stop";
          break;
        }
        if (step + 1 < max_new_) logits = session->decode(t);
      }
      const std::string text = tok_->decode(ids);
      out.push_back({program_from_output(p, text, false), text,
                     {{"prompt_tokens", prompt.size()}, {"new_tokens", ids.size()}, {"finish", finish},
                      {"gen_s", seconds_since(t0)}, {"folded_vocab", fold_}}});
    }
    return out;
  }

 private:
  int64_t max_new_;
  double temperature_, top_p_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Tokenizer> tok_;
  int64_t vocab_ = 0, eos_ = -1;
  bool fold_ = false;
  Numerics numerics_;
};

// OpenAI-compatible /completions or /chat/completions over plain HTTP.
class HttpBackend : public Backend {
 public:
  HttpBackend(const json& params, std::string api_key) : api_key_(std::move(api_key)) {
    const BaseUrl url = parse_base_url(params.at("base_url"));
    host_ = url.origin;
    prefix_ = url.prefix;
    model_ = params.at("model");
    chat_ = params.value("api", "chat") == "chat";
    max_tokens_ = params.value("max_new_tokens", 512);
    temperature_ = params.value("temperature", 0.0);
    top_p_ = params.value("top_p", 1.0);
  }

  std::vector<Generated> generate(const Problem& p, int n, uint64_t seed) override {
    std::vector<Generated> out;
    for (int i = 0; i < n; ++i) {
      json body = {{"model", model_}, {"max_tokens", max_tokens_}, {"temperature", temperature_}, {"top_p", top_p_},
                   {"seed", sample_seed(seed, p.task_id, i) & 0x7fffffff}};
      if (chat_) {
        const std::string ask = p.code_prompt
                                    ? "Complete the following Python code. Answer with the whole program in one ```python code block.\n\n```python\n" +
                                          p.prompt + "```\n"
                                    : p.prompt + "\nAnswer with the whole Python program in one ```python code block.\n";
        body["messages"] = json::array({{{"role", "user"}, {"content", ask}}});
      } else {
        body["prompt"] = p.prompt;
        if (p.code_prompt) body["stop"] = stop_sequences();
      }
      const auto t0 = std::chrono::steady_clock::now();
      const json reply = post(chat_ ? "/chat/completions" : "/completions", body);
      const json& choice = reply.at("choices").at(0);
      const std::string text = chat_ ? choice.at("message").at("content").get<std::string>() : choice.at("text").get<std::string>();
      json info = {{"gen_s", seconds_since(t0)}, {"finish", choice.value("finish_reason", "")}};
      if (reply.contains("usage")) info["usage"] = reply["usage"];
      out.push_back({program_from_output(p, text, chat_), text, std::move(info)});
    }
    return out;
  }

 private:
  json post(const std::string& endpoint, const json& body) {
    httplib::Client cli(host_);
    cli.set_connection_timeout(10);
    cli.set_read_timeout(600);
    httplib::Headers headers;
    if (!api_key_.empty()) headers.emplace("Authorization", "Bearer " + api_key_);
    std::string problem;
    for (int attempt = 0; attempt < 4; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
      auto res = cli.Post(prefix_ + endpoint, headers, body.dump(), "application/json");
      if (!res) {
        problem = fmt::format("cannot reach {}{}: {}", host_, prefix_ + endpoint, httplib::to_string(res.error()));
        continue;
      }
      if (res->status == 429 || res->status >= 500) {
        problem = fmt::format("{}{} answered HTTP {}: {}", host_, prefix_ + endpoint, res->status, res->body.substr(0, 200));
        continue;
      }
      if (res->status != 200)
        throw std::runtime_error(fmt::format("{}{} answered HTTP {}: {}", host_, prefix_ + endpoint, res->status, res->body.substr(0, 300)));
      json j = json::parse(res->body, nullptr, false);
      if (j.is_discarded() || !j.contains("choices") || j["choices"].empty())
        throw std::runtime_error(fmt::format("{}{} answered something that is not a completion: {}", host_, prefix_ + endpoint,
                                             res->body.substr(0, 300)));
      return j;
    }
    throw std::runtime_error(problem);
  }

  std::string api_key_, host_, prefix_, model_;
  bool chat_ = true;
  int64_t max_tokens_ = 512;
  double temperature_ = 0, top_p_ = 1;
};

}  // namespace

uint64_t sample_seed(uint64_t seed, const std::string& task_id, int index) {
  uint64_t h = fnv1a(task_id, kFnv1aOffset ^ seed);
  h = (h ^ static_cast<uint64_t>(index)) * kFnv1aPrime;
  return h ^ (h >> 29);
}

std::string extract_code(const std::string& text) {
  const size_t close = text.rfind("```");
  if (close == std::string::npos || close == 0) return text;
  const size_t open = text.rfind("```", close - 1);
  if (open == std::string::npos) return text;
  const size_t body = text.find('\n', open);  // skip the language tag
  if (body == std::string::npos || body >= close) return text;
  return text.substr(body + 1, close - body - 1);
}

std::string truncate_completion(const std::string& completion) {
  size_t cut = completion.size();
  for (const auto& s : stop_sequences()) cut = std::min(cut, completion.find(s));
  return completion.substr(0, cut);
}

std::string program_from_output(const Problem& p, const std::string& text, bool chat) {
  if (chat || !p.code_prompt) return program_for(p, extract_code(text));
  return p.prompt + truncate_completion(text);
}

std::vector<std::pair<std::string, std::string>> read_samples_file(const std::string& path, const std::vector<Problem>& problems) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("cannot read --samples '{}'", path));
  std::map<std::string, const Problem*> by_id;
  for (const auto& p : problems) by_id[p.task_id] = &p;
  std::vector<std::pair<std::string, std::string>> out;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json j = json::parse(line, nullptr, false);
    const auto where = fmt::format("--samples '{}' line {}", path, line_no);
    if (j.is_discarded() || !j.is_object()) throw UsageError(where + ": not a JSON object");
    if (!j.contains("task_id") || !j["task_id"].is_string()) throw UsageError(where + ": needs a string task_id");
    const std::string task = j["task_id"];
    auto it = by_id.find(task);
    if (it == by_id.end()) throw UsageError(fmt::format("{}: task_id '{}' is not a problem of this dataset", where, task));
    if (j.contains("solution") && j["solution"].is_string()) out.emplace_back(task, j["solution"].get<std::string>());
    else if (j.contains("completion") && j["completion"].is_string())
      out.emplace_back(task, it->second->code_prompt ? it->second->prompt + j["completion"].get<std::string>() : j["completion"].get<std::string>());
    else throw UsageError(where + ": needs a string 'completion' or 'solution'");
  }
  return out;
}

std::unique_ptr<Backend> make_backend(const json& params, const std::vector<Problem>& problems, const std::string& api_key) {
  const std::string b = params.at("backend");
  if (b == "oracle") return std::make_unique<OracleBackend>();
  if (b == "file") return std::make_unique<FileBackend>(params.at("samples").get<std::string>(), problems);
  if (b == "engine")
    return std::make_unique<EngineBackend>(params.at("model").get<std::string>(), params.value("max_new_tokens", 512),
                                           params.value("temperature", 0.0), params.value("top_p", 1.0), params.value("seed", uint64_t{0}),
                                           parse_numerics(stored_numerics(params)));
  if (b == "http") return std::make_unique<HttpBackend>(params, api_key);
  throw UsageError(fmt::format("unknown --backend '{}': expected engine, http, oracle or file", b));
}

}  // namespace v4b::evals::coding
