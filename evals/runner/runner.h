// The one loop every suite runs through: plan, skip what a resumed run already has, execute,
// commit each case in its own transaction, mark the run done.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "evals/suites/suite.h"

namespace v4b::evals {

struct RunRequest {
  std::string db_path;
  nlohmann::json params;           // ignored on resume: the stored params are used
  uint64_t seed = 0;
  std::optional<int64_t> resume;   // continue this run instead of starting one
  bool progress = false;           // one line per case on stderr
};

struct RunOutcome {
  int64_t run_id = 0;
  std::string status;  // done | failed
  int planned = 0, executed = 0, resumed = 0, failed = 0;
  double wall_s = 0;
};

// Everything the user gave is validated (suite.plan) before the database is opened, so bad input
// writes nothing. For tests, V4BENCH_TEST_KILL_AFTER_CASES=N makes the process SIGKILL itself after
// committing N cases, the way a crash or an OOM kill would.
RunOutcome run_suite(Suite& suite, const RunRequest& request);

}  // namespace v4b::evals
