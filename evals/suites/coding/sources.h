// Where the coding suite's programs come from: a model through evals/backends (the embedded engine
// or an OpenAI-compatible server), or two coding-only sources: the canonical solutions (`oracle`,
// to validate the grader) and a samples file (`file`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "evals/backends/backend.h"
#include "evals/suites/coding/coding_params.h"
#include "evals/suites/coding/problems.h"

namespace v4b::evals::coding {

struct Generated {
  std::string program;  // what the grader runs
  std::string output;   // the model's raw text ("" for oracle and file)
  nlohmann::json info;  // per-sample facts worth storing (tokens, seconds, finish reason)
};

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // The samples for problem `p`; sample i of a problem is drawn with a seed derived from (seed, task, i),
  // so a resumed run regenerates what it would have (with official numerics up to the last bits
  // that batching several samples in one engine step can move).
  virtual std::vector<Generated> generate(const Problem& p, int n, uint64_t seed) = 0;
};

// From the suite's params (backend, samples, max_new_tokens, temperature, top_p, api): the oracle,
// a samples file, or the model behind `backend` (the run's, for --backend engine or http). Throws
// UsageError for an unreadable samples file.
std::unique_ptr<SampleSource> make_source(const CodingParams& params, const std::vector<Problem>& problems, Backend* backend);

// Turning a model's text into a program (spec harness-anchors §3.5 for the fences):
// the contents of the last ```-fenced block, else the whole text.
std::string extract_code(const std::string& text);
// A completion of a code prompt cut where the function ends (HumanEval's stop sequences).
std::string truncate_completion(const std::string& completion);
// The program for a model's output: chat answers and natural-language prompts give code blocks;
// completions of code prompts continue the prompt.
std::string program_from_output(const Problem& p, const std::string& text, bool chat);

// A samples file in EvalPlus's format: one JSON object per line with task_id and either
// `completion` (appended to the prompt) or `solution` (a whole program). Programs by task id, in
// file order. Throws UsageError naming the file and line for anything malformed.
std::vector<std::pair<std::string, std::string>> read_samples_file(const std::string& path, const std::vector<Problem>& problems);

// Deterministic per-sample seed.
uint64_t sample_seed(uint64_t seed, const std::string& task_id, int index);

}  // namespace v4b::evals::coding
