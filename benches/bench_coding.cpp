// Seconds to grade a coding dataset with the oracle (its canonical solutions) on 2 workers, the
// canonical solutions' reference runs done beforehand (they are cached in real runs). HumanEval+
// grades every base and plus input (1,570 + 122,683). Counters: problems/s and inputs/s.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "evals/suites/coding/grader.h"
#include "evals/suites/coding/problems.h"

namespace {

using namespace v4b::evals::coding;

void BM_GradeOracle(benchmark::State& state, const std::string& dataset, int64_t inputs) {
  const auto problems = load_problems(dataset);
  std::vector<GradeJob> jobs;
  for (const auto& p : problems) jobs.push_back({&p, p.canonical});
  Grader grader(GradeOptions{});
  grade_all(grader, jobs, 2);  // references: timed and recorded once, outside the measurement
  int64_t passed = 0;
  for (auto _ : state) {
    passed = 0;
    for (const auto& g : grade_all(grader, jobs, 2)) passed += g.status == "pass";
  }
  state.counters["passed"] = static_cast<double>(passed);
  state.counters["problems_per_s"] = benchmark::Counter(static_cast<double>(problems.size()), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["inputs_per_s"] = benchmark::Counter(static_cast<double>(inputs), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK_CAPTURE(BM_GradeOracle, humaneval_plus, std::string("humaneval+"), int64_t{1570 + 122683})
    ->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GradeOracle, humaneval, std::string("humaneval"), int64_t{164})->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
