#include "evals/suites/coding/sources.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/hashing.h"
#include "evals/backends/backend.h"

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

class OracleSource : public SampleSource {
 public:
  std::vector<Generated> generate(const Problem& p, int n, uint64_t) override {
    return std::vector<Generated>(static_cast<size_t>(n), Generated{p.canonical, "", json::object()});
  }
};

class FileSource : public SampleSource {
 public:
  FileSource(const std::string& path, const std::vector<Problem>& problems) {
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

// A model's programs, through the engine or an OpenAI-compatible server (evals/backends).
class ModelSource : public SampleSource {
 public:
  ModelSource(const CodingParams& p, Backend& backend) : backend_(backend) {
    folded_ = backend_.kind() == "engine" && backend_.tokens().vocab_size() > backend_.capabilities().vocab;
    chat_ = backend_.kind() == "http" && p.api == "chat";
    max_tokens_ = p.max_new_tokens;
    temperature_ = p.temperature;
    top_p_ = p.top_p;
  }

  // The n samples are requested together (at most kInFlight at a time), so the engine's scheduler
  // decodes them as one batch and a server sees concurrent requests; each keeps its own seed.
  std::vector<Generated> generate(const Problem& p, int n, uint64_t seed) override {
    std::vector<Generated> out(static_cast<size_t>(n));
    std::vector<std::string> errors(static_cast<size_t>(n));
    std::atomic<int> next{0};
    auto work = [&] {
      for (int i; (i = next++) < n;) {
        try {
          out[static_cast<size_t>(i)] = sample(p, i, seed);
        } catch (const std::exception& e) {
          errors[static_cast<size_t>(i)] = e.what();
        }
      }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < std::min(n, kInFlight); ++t) threads.emplace_back(work);
    for (auto& t : threads) t.join();
    for (const auto& e : errors)
      if (!e.empty()) throw std::runtime_error(e);
    return out;
  }

 private:
  static constexpr int kInFlight = 8;

  Generated sample(const Problem& p, int i, uint64_t seed) {
    GenerateRequest q;
    q.chat = chat_;
    if (chat_)
      q.prompt_text = p.code_prompt ? "Complete the following Python code. Answer with the whole program in one ```python code block.\n\n```python\n" +
                                          p.prompt + "```\n"
                                    : p.prompt + "\nAnswer with the whole Python program in one ```python code block.\n";
    else q.prompt_text = p.prompt;
    if (!chat_ && p.code_prompt) q.stop = stop_sequences();
    q.max_tokens = max_tokens_;
    q.sampling = {temperature_, 0, top_p_, sample_seed(seed, p.task_id, i)};
    const auto t0 = std::chrono::steady_clock::now();
    Generation g = backend_.generate(q);
    if (!g.ok()) throw std::runtime_error(g.error);
    json info = {{"gen_s", seconds_since(t0)}, {"finish", g.finish_reason}, {"prompt_tokens", g.prompt_tokens},
                 {"new_tokens", g.completion_tokens}};
    if (folded_) info["folded_vocab"] = true;
    return {program_from_output(p, g.text, chat_), g.text, std::move(info)};
  }

  Backend& backend_;
  bool chat_ = false, folded_ = false;
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
  if (!in) throw UsageError(fmt::format("cannot read --samples-file '{}'", path));
  std::map<std::string, const Problem*> by_id;
  for (const auto& p : problems) by_id[p.task_id] = &p;
  std::vector<std::pair<std::string, std::string>> out;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json j = json::parse(line, nullptr, false);
    const auto where = fmt::format("--samples-file '{}' line {}", path, line_no);
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

std::unique_ptr<SampleSource> make_source(const CodingParams& p, const std::vector<Problem>& problems, Backend* backend) {
  const std::string& b = p.backend;
  if (b == "oracle") return std::make_unique<OracleSource>();
  if (b == "file") return std::make_unique<FileSource>(p.samples, problems);
  if (p.generates() && backend != nullptr) return std::make_unique<ModelSource>(p, *backend);
  throw UsageError(fmt::format("unknown --backend '{}': expected engine, http, oracle or file", b));
}

}  // namespace v4b::evals::coding
