// The canonical solutions of whole datasets through the grader: every one must pass, and the
// corrupted ones (every return value changed) must all fail. Minutes of CPU, so these are disabled
// in the default gtest run and registered with ctest as `coding_oracle_full` (label `slow`), which
// scripts/test.sh runs. They print the time to grade each set.
#include <algorithm>
#include <chrono>
#include <iostream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "evals/suites/coding/grader.h"
#include "evals/suites/coding/problems.h"
#include "tests/coding_test_util.h"

namespace v4b::evals::coding {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Grades the canonical solutions twice (the first pass also times and records the reference) and
// then the corrupted ones, expecting every one of those to fail but the listed exceptions.
void check_dataset(const std::string& dataset, const std::vector<std::string>& corrupted_may_pass) {
  const auto problems = load_problems(dataset);
  Grader grader(GradeOptions{});
  std::vector<GradeJob> good, bad;
  for (const auto& p : problems) {
    good.push_back({&p, p.canonical});
    bad.push_back({&p, test::corrupted_solution(p)});
  }
  auto t0 = std::chrono::steady_clock::now();
  grade_all(grader, good, 2);
  const double reference_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const auto grades = grade_all(grader, good, 2);
  const double grade_s = seconds_since(t0);
  int passed = 0;
  for (size_t i = 0; i < grades.size(); ++i) {
    passed += grades[i].status == "pass";
    EXPECT_EQ(grades[i].status, "pass") << problems[i].task_id << ": " << grades[i].to_json().dump();
  }
  t0 = std::chrono::steady_clock::now();
  const auto corrupted = grade_all(grader, bad, 2);
  const double corrupted_s = seconds_since(t0);
  int corrupted_passed = 0;
  for (size_t i = 0; i < corrupted.size(); ++i) {
    const bool allowed = std::find(corrupted_may_pass.begin(), corrupted_may_pass.end(), problems[i].task_id) != corrupted_may_pass.end();
    if (allowed) continue;
    corrupted_passed += corrupted[i].status == "pass";
    EXPECT_NE(corrupted[i].status, "pass") << problems[i].task_id << " passed with every return value changed";
  }
  std::cout << fmt::format("[ measured ] {}: oracle {}/{} pass; first pass (reference + grade) {:.1f} s, grading alone {:.1f} s "
                           "on 2 workers; corrupted oracle {} pass in {:.1f} s\n",
                           dataset, passed, problems.size(), reference_s, grade_s, corrupted_passed, corrupted_s);
}

TEST(CodingOracleFull, DISABLED_HumanEval) { check_dataset("humaneval", {}); }
TEST(CodingOracleFull, DISABLED_HumanEvalPlus) { check_dataset("humaneval+", {}); }
// Mbpp/164 (are_equivalent) has EvalPlus's always-true special oracle: any program that runs passes.
TEST(CodingOracleFull, DISABLED_MbppPlus) { check_dataset("mbpp+", {"Mbpp/164"}); }
TEST(CodingOracleFull, DISABLED_Mbpp) { check_dataset("mbpp", {}); }
TEST(CodingOracleFull, DISABLED_MbppSanitized) { check_dataset("mbpp-sanitized", {}); }
TEST(CodingOracleFull, DISABLED_LcbSample) { check_dataset("lcb-sample", {}); }

}  // namespace
}  // namespace v4b::evals::coding
