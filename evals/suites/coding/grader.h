// Grades one program against one problem's tests in the sandbox, with per-test time limits scaled
// from the canonical solution's own time (spec harness-anchors §3.4/§3.5).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "evals/suites/coding/problems.h"
#include "evals/suites/coding/sandbox.h"

namespace v4b::evals::coding {

struct GradeOptions {
  // "cpu": per-test limits on CPU time (ITIMER_PROF, RLIMIT_CPU), so verdicts do not move with the
  // machine's load; "wall": EvalPlus's wall-clock limits, for parity with its numbers.
  std::string time_mode = "cpu";
  double time_floor = 4.0;        // per-test limit = max(floor, factor x reference time) (EvalPlus defaults)
  double time_factor = 4.0;
  double per_sample_cap = 60.0;   // the sum of a sample's per-test limits is capped here (EVALPLUS_TIMEOUT_PER_TASK)
  int64_t memory_bytes = int64_t{4} << 30;
  std::string cache_dir;          // where reference outputs and times persist; "" keeps them in memory only
};

// Per-sample status: pass, fail (a wrong answer), timeout, error (exception, crash, no verdict), oom.
struct Grade {
  std::string status;        // the sample's status: base tests, then plus tests where there are any
  std::string base_status;
  std::string plus_status;   // "" without plus tests; "not run" when base failed
  bool base_pass = false, plus_pass = false;
  nlohmann::json first_failure;  // {"group", "test", "status", "msg"} of the test that decided, or null
  int tests_passed = 0;
  double cpu_s = 0, wall_s = 0;
  std::string detail;        // how the process ended when that decided the status
  nlohmann::json to_json() const;
};

class Grader {
 public:
  explicit Grader(GradeOptions o) : opts_(std::move(o)) {}
  ~Grader();
  Grader(const Grader&) = delete;
  Grader& operator=(const Grader&) = delete;
  // Thread-safe. The first grade of a problem runs its canonical solution once to time each test
  // (and, for EvalPlus, to record the expected outputs); that reference is cached.
  Grade grade(const Problem& p, const std::string& program);
  const GradeOptions& options() const { return opts_; }

 private:
  struct Reference {
    std::map<std::string, std::vector<double>> times;  // per group, seconds per test
    std::string expected_path;                          // EvalPlus: the expected outputs, for the driver
    std::string error;                                  // the canonical solution did not pass: why
  };
  std::shared_ptr<const Reference> reference(const Problem& p);
  Reference compute_reference(const Problem& p, const std::string& expected_file);
  // A temporary directory, readable by the sandboxes, holding each problem's expected outputs.
  std::string expected_dir();

  GradeOptions opts_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<std::once_flag>> once_;
  std::map<std::string, std::shared_ptr<const Reference>> refs_;
  std::string expected_dir_;
};

struct GradeJob {
  const Problem* problem = nullptr;
  std::string program;
};
// Grades every job on `workers` threads (each runs one sandbox at a time); results in job order.
// `progress(done, total)` is called after each job, from the worker that finished it.
std::vector<Grade> grade_all(Grader& grader, const std::vector<GradeJob>& jobs, int workers,
                             const std::function<void(size_t, size_t)>& progress = {});

// The driver's job for running `program` on problem `p` (exposed for tests).
nlohmann::json driver_job(const Problem& p, const std::string& program);

}  // namespace v4b::evals::coding
