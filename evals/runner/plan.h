// Plans: a JSON file bundling suite runs, e.g. plans/ci.json for every commit and plans/demo.json
// for the demo. Each step is a suite with the same flags its `v4bench run SUITE` takes:
//   {"name": "ci", "description": "...",
//    "steps": [{"suite": "kv", "args": ["--model", "v4-tiny", "--ctx", "1k,4k"]}, ...]}
// ("args" may also be one string, split at spaces). Every step is parsed and planned before the
// first one runs, so a bad plan stores nothing.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "evals/runner/runner.h"

namespace v4b::evals {

struct PlanStep {
  std::string suite;
  std::vector<std::string> args;
  std::unique_ptr<Suite> instance;  // with its flags parsed
  nlohmann::json params;
};

struct Plan {
  std::string name, description;
  std::vector<PlanStep> steps;
};

// Reads, parses and validates a plan (every step's flags and planned cases); throws UsageError
// naming the file, the step and the problem.
Plan load_plan(const std::string& path, uint64_t seed);

struct PlanOutcome {
  std::string suite;
  RunOutcome run;
};
// Runs the steps in order into `db_path`, one stored run each.
std::vector<PlanOutcome> run_plan(Plan& plan, const std::string& db_path, uint64_t seed, bool progress);

}  // namespace v4b::evals
