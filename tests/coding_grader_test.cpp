// The coding suite's grader and sandbox: pass@k against hand-computed values, the sandbox's
// plumbing, the canonical solutions passing (the oracle) and corrupted ones failing on every
// grading mode, statuses, the wall-clock mode, and turning model output into programs.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "evals/suites/coding/sources.h"
#include "evals/suites/coding/grader.h"
#include "evals/suites/coding/pass_at_k.h"
#include "evals/suites/coding/problems.h"
#include "evals/suites/coding/sandbox.h"
#include "tests/coding_test_util.h"

namespace v4b::evals::coding {
namespace {

// ---------------------------------------------------------------------------------------------
// pass@k

TEST(CodingPassAtK, HandComputedValues) {
  // n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10.
  EXPECT_NEAR(pass_at_k(5, 2, 2), 0.7, 1e-12);
  // n=10, c=3, k=1: c/n.
  EXPECT_NEAR(pass_at_k(10, 3, 1), 0.3, 1e-12);
  // n=10, c=1, k=5: 1 - C(9,5)/C(10,5) = 1 - 126/252.
  EXPECT_NEAR(pass_at_k(10, 1, 5), 0.5, 1e-12);
  // n=200, c=10, k=10: 1 - C(190,10)/C(200,10), computed by hand as a product of ten ratios.
  double ratio = 1;
  for (int i = 0; i < 10; ++i) ratio *= (190.0 - i) / (200.0 - i);
  EXPECT_NEAR(pass_at_k(200, 10, 10), 1 - ratio, 1e-12);
}

TEST(CodingPassAtK, EdgeCases) {
  EXPECT_EQ(pass_at_k(4, 0, 1), 0.0);  // c = 0
  EXPECT_EQ(pass_at_k(4, 0, 4), 0.0);
  EXPECT_EQ(pass_at_k(4, 4, 1), 1.0);  // c = n
  EXPECT_EQ(pass_at_k(4, 4, 4), 1.0);
  EXPECT_EQ(pass_at_k(3, 1, 3), 1.0);  // n = k: one pass among all of them is enough
  EXPECT_EQ(pass_at_k(3, 0, 3), 0.0);
  EXPECT_NEAR(pass_at_k(1, 1, 1), 1.0, 0);  // greedy: pass@1 is the fraction solved
  EXPECT_THROW(pass_at_k(3, 1, 4), std::invalid_argument);  // k > n is not estimable
  EXPECT_THROW(pass_at_k(3, 4, 1), std::invalid_argument);
  EXPECT_THROW(pass_at_k(3, 1, 0), std::invalid_argument);
}

TEST(CodingPassAtK, MeanAndBootstrapInterval) {
  // Greedy over four problems, two solved: 0.5, with an interval inside [0, 1] around it.
  const std::vector<ProblemCount> greedy = {{1, 1}, {1, 0}, {1, 1}, {1, 0}};
  const PassAtK m = mean_pass_at_k(greedy, 1, 7);
  EXPECT_DOUBLE_EQ(m.value, 0.5);
  EXPECT_LE(m.ci_lo, m.value);
  EXPECT_GE(m.ci_hi, m.value);
  EXPECT_GE(m.ci_lo, 0.0);
  EXPECT_LE(m.ci_hi, 1.0);
  EXPECT_LT(m.ci_lo, m.ci_hi);  // four coin flips leave real uncertainty
  // Deterministic in the seed.
  const PassAtK again = mean_pass_at_k(greedy, 1, 7);
  EXPECT_EQ(again.ci_lo, m.ci_lo);
  EXPECT_EQ(again.ci_hi, m.ci_hi);
  // Identical problems: no spread.
  const PassAtK same = mean_pass_at_k({{5, 2}, {5, 2}, {5, 2}}, 2, 1);
  EXPECT_NEAR(same.value, 0.7, 1e-12);
  EXPECT_NEAR(same.ci_lo, 0.7, 1e-12);
  EXPECT_NEAR(same.ci_hi, 0.7, 1e-12);
  EXPECT_THROW(mean_pass_at_k({{5, 2}, {1, 1}}, 2, 1), std::invalid_argument);  // a problem with n < k
}

// ---------------------------------------------------------------------------------------------
// Helpers

GradeOptions fast_options() {
  GradeOptions o;
  o.time_floor = 1.0;  // the programs below are tiny; a short floor keeps the infinite loops short
  return o;
}

const Problem& find(const std::vector<Problem>& ps, const std::string& id) {
  for (const auto& p : ps)
    if (p.task_id == id) return p;
  throw std::runtime_error("no problem " + id);
}

int processes_with(const std::string& needle) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmd.find(needle) != std::string::npos) ++n;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Sandbox

TEST(CodingSandbox, RunsPythonAndCapturesOutputUpToTheCap) {
  SandboxLimits l;
  l.output_cap = 1000;
  const SandboxRun r = run_python({{"p.py", "import os, sys\nprint('x' * 5000)\nos.write(3, b'verdict')\nsys.exit(3)\n"}}, "p.py", l);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.out.size(), 1000u);
  EXPECT_TRUE(r.out_truncated);
  EXPECT_EQ(r.result, "verdict");
  EXPECT_FALSE(r.wall_killed);
}

TEST(CodingSandbox, EnvironmentIsScrubbedAndStdinClosed) {
  setenv("V4B_SANDBOX_CANARY", "leaked", 1);
  const SandboxRun r = run_python(
      {{"p.py", "import os, sys\nprint(sorted(os.environ))\nprint(repr(sys.stdin.read()))\nprint(os.getcwd())\n"}}, "p.py", {});
  unsetenv("V4B_SANDBOX_CANARY");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("V4B_SANDBOX_CANARY"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("''"), std::string::npos) << "stdin should be empty: " << r.out;
  EXPECT_NE(r.out.find("/w\n"), std::string::npos) << "the program runs in its scratch directory: " << r.out;
}

TEST(CodingSandbox, WallClockBackstopKillsASleepingProgram) {
  SandboxLimits l;
  l.wall_s = 1.0;
  const SandboxRun r = run_python({{"p.py", "import time\ntime.sleep(600)\n"}}, "p.py", l);
  EXPECT_TRUE(r.wall_killed);
  EXPECT_LT(r.wall_s, 5.0);
  EXPECT_EQ(processes_with("v4b-sandbox-" + std::to_string(getpid()) + "-"), 0) << "a sandboxed process survived its run";
}

TEST(CodingSandbox, ProcessesThatLeaveTheGroupDieWithTheSandbox) {
  // Without a PID namespace a child that calls setsid() leaves the process group the backstop kills.
  if (!sandbox_isolation().namespaces) GTEST_SKIP() << "no PID namespace on this host: " << sandbox_isolation().note;
  SandboxLimits l;
  l.wall_s = 1.0;
  const SandboxRun r =
      run_python({{"p.py", "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(600)\n"
                           "    os._exit(0)\ntime.sleep(600)\n"}},
                 "p.py", l);
  EXPECT_TRUE(r.wall_killed);
  EXPECT_EQ(processes_with("v4b-sandbox-" + std::to_string(getpid()) + "-"), 0) << "a sandboxed process survived its run";
}

TEST(CodingSandbox, IsolationIsReported) {
  const auto j = sandbox_isolation_json();
  EXPECT_TRUE(j.contains("network"));
  EXPECT_FALSE(sandbox_isolation().python.empty());
  if (!sandbox_isolation().namespaces) {
    EXPECT_FALSE(sandbox_isolation().note.empty()) << "reduced isolation must say why";
  }
}

// ---------------------------------------------------------------------------------------------
// Oracle and corrupted oracle on small subsets (the whole sets run in CodingOracleFull)

TEST(CodingGrader, OracleAndCorruptedOracleOnEachGradingMode) {
  Grader grader(fast_options());
  const std::vector<std::pair<std::string, std::vector<std::string>>> sets = {
      {"humaneval", {"HumanEval/0", "HumanEval/32", "HumanEval/53"}},
      {"humaneval+", {"HumanEval/0", "HumanEval/2", "HumanEval/32"}},
      {"mbpp", {"Mbpp/11", "Mbpp/17", "Mbpp/367"}},  // 367: test_setup_code builds trees of the program's class
      {"mbpp-sanitized", {"Mbpp/11", "Mbpp/17"}},
      {"mbpp+", {"Mbpp/2", "Mbpp/404", "Mbpp/581"}},
  };
  for (const auto& [dataset, ids] : sets) {
    const auto problems = load_problems(dataset);
    for (const auto& id : ids) {
      const Problem& p = find(problems, id);
      const Grade good = grader.grade(p, p.canonical);
      EXPECT_EQ(good.status, "pass") << dataset << " " << id << ": " << good.to_json().dump();
      EXPECT_GT(good.tests_passed, 0) << dataset << " " << id;
      const Grade bad = grader.grade(p, test::corrupted_solution(p));
      EXPECT_NE(bad.status, "pass") << dataset << " " << id << ": " << bad.to_json().dump();
      EXPECT_FALSE(bad.base_pass) << dataset << " " << id;
    }
  }
}

TEST(CodingGrader, LcbSampleOracleStdinAndFunctional) {
  Grader grader(fast_options());
  const auto problems = load_problems("lcb-sample");
  ASSERT_GE(problems.size(), 3u);
  int stdin_n = 0, functional_n = 0;
  for (const auto& p : problems) {
    (p.job.at("testtype") == "functional" ? functional_n : stdin_n)++;
    EXPECT_EQ(grader.grade(p, p.canonical).status, "pass") << p.task_id;
    EXPECT_NE(grader.grade(p, "print(42)\n").status, "pass") << p.task_id;
  }
  EXPECT_GE(stdin_n, 1);
  EXPECT_GE(functional_n, 1);
}

TEST(CodingGrader, StatusesForWrongSlowCrashingAndHungryPrograms) {
  Grader grader(fast_options());
  const auto problems = load_problems("humaneval+");
  const Problem& p = find(problems, "HumanEval/0");
  const std::string head = "def has_close_elements(numbers, threshold):\n";
  EXPECT_EQ(grader.grade(p, head + "    return False\n").status, "fail");
  EXPECT_EQ(grader.grade(p, head + "    while True:\n        pass\n").status, "timeout");
  EXPECT_EQ(grader.grade(p, head + "    raise ValueError('no')\n").status, "error");
  EXPECT_EQ(grader.grade(p, "def has_close_elements(:\n").status, "error");
  EXPECT_EQ(grader.grade(p, head + "    x = bytearray(20 * 1024 ** 3)\n    return True\n").status, "oom");
  // Right on the seven base inputs (at most six numbers), wrong on longer plus inputs.
  const Grade plus_only = grader.grade(p, head + "    if len(numbers) > 6:\n        return None\n" +
                                              "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n");
  EXPECT_EQ(plus_only.base_status, "pass") << plus_only.to_json().dump();
  EXPECT_TRUE(plus_only.base_pass);
  EXPECT_FALSE(plus_only.plus_pass);
  EXPECT_EQ(plus_only.status, "fail");
}

TEST(CodingGrader, WallClockModeForParityWithEvalPlus) {
  GradeOptions o = fast_options();
  o.time_mode = "wall";
  Grader grader(o);
  const auto problems = load_problems("humaneval+");
  const Problem& p = find(problems, "HumanEval/0");
  EXPECT_EQ(grader.grade(p, p.canonical).status, "pass");
  const Grade sleeper = grader.grade(p, "import time\ndef has_close_elements(numbers, threshold):\n    time.sleep(30)\n");
  EXPECT_EQ(sleeper.status, "timeout") << sleeper.to_json().dump();  // no CPU used: only a wall clock sees it
  EXPECT_LT(sleeper.wall_s, 10.0);
}

TEST(CodingBackends, CodeFromModelOutput) {
  EXPECT_EQ(extract_code("Sure:\n```python\nx = 1\n```\nthen\n```py\ny = 2\n```\nbye"), "y = 2\n");  // the last block
  EXPECT_EQ(extract_code("no fences here"), "no fences here");
  EXPECT_EQ(truncate_completion("    return 1\n\ndef other():\n    pass\n"), "    return 1\n");
  EXPECT_EQ(truncate_completion("    return 1\nif __name__ == '__main__':\n    main()\n"), "    return 1");
  const auto problems = load_problems("humaneval");
  const Problem& p = problems[0];
  // A completion continues the prompt; a chat answer holding the whole function stands alone.
  EXPECT_EQ(program_from_output(p, "    return True\n\ndef junk():\n", false), p.prompt + "    return True\n");
  const std::string whole = "def has_close_elements(numbers, threshold):\n    return True\n";
  EXPECT_EQ(program_from_output(p, "```python\n" + whole + "```", true), whole);
  EXPECT_EQ(program_from_output(p, "```python\n    return True\n```", true), p.prompt + "    return True\n");
  EXPECT_NE(sample_seed(1, "HumanEval/0", 0), sample_seed(1, "HumanEval/0", 1));
  EXPECT_NE(sample_seed(1, "HumanEval/0", 0), sample_seed(2, "HumanEval/0", 0));
  EXPECT_EQ(sample_seed(1, "HumanEval/0", 3), sample_seed(1, "HumanEval/0", 3));
}

}  // namespace
}  // namespace v4b::evals::coding
