// The coding datasets shipped in datasets/coding, read into one Problem shape: what a model is
// prompted with, the canonical solution (for the oracle backend) and what the grader's driver needs.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace v4b::evals::coding {

// humaneval, humaneval+, mbpp (the 500-problem test split, task ids 11-510), mbpp-sanitized (its
// 257 hand-verified problems), mbpp+ (378), lcb-sample (our own problems in LiveCodeBench's schema).
const std::vector<std::string>& dataset_names();

enum class Grading {
  kHumanEval,  // prompt + completion + test + check(entry_point)
  kEvalPlus,   // function called on base and plus inputs, outputs compared with the canonical's
  kAsserts,    // MBPP: setup code, program, then each assert
  kLcb,        // LiveCodeBench: stdin/stdout or call-based tests
};

struct Problem {
  std::string task_id;
  std::string prompt;       // what the model is given
  std::string entry_point;  // function name ("" for stdin programs)
  std::string canonical;    // the reference solution as a complete program
  bool code_prompt = false; // the prompt is code the completion continues (HumanEval, EvalPlus)
  std::string dataset;      // "humaneval" or "mbpp" for EvalPlus's special oracles
  Grading grading = Grading::kHumanEval;
  std::string raw;          // the dataset's own JSON line, read by the driver (task.json)
  nlohmann::json job;       // grading fields for the driver: tests, setup code, test type
};

// Every problem of `dataset` in dataset order. Throws UsageError for an unknown name and
// std::runtime_error for a missing or malformed file.
std::vector<Problem> load_problems(const std::string& dataset);

// The program to run for a model's text: a completion continues a code prompt; anything holding
// `def <entry_point>` (a whole solution, as chat models answer) is taken as it is.
std::string program_for(const Problem& p, const std::string& text);

}  // namespace v4b::evals::coding
