// Adversarial programs, each graded as a HumanEval answer: every one must be contained (nothing
// escapes the sandbox, the harness keeps running) and scored as a failure. Each program would pass
// if its attack worked: it returns the right answer only after the attack succeeded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "evals/suites/coding/grader.h"
#include "evals/suites/coding/problems.h"
#include "evals/suites/coding/sandbox.h"
#include "tests/test_util.h"

namespace v4b::evals::coding {
namespace {

// HumanEval/0 (has_close_elements), graded by check(candidate).
class CodingAdversarial : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (auto& p : load_problems("humaneval"))
      if (p.task_id == "HumanEval/0") problem_ = new Problem(p);
  }
  static void TearDownTestSuite() {
    delete problem_;
    problem_ = nullptr;
  }

  // `attack` runs first; `attack_worked` (a Python expression) decides whether the answer is right.
  static std::string program(const std::string& attack, const std::string& attack_worked) {
    return "import os, sys, socket, signal, time\n\n"
           "def has_close_elements(numbers, threshold):\n" +
           attack +
           "    if not (" + attack_worked + "):\n"
           "        raise RuntimeError('contained')\n"
           "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n";
  }

  Grade grade(const std::string& src) {
    GradeOptions o;
    o.time_floor = 1.0;
    Grader g(o);
    return g.grade(*problem_, src);
  }

  static int sandbox_processes() {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      std::ifstream in(e.path() / "cmdline", std::ios::binary);
      const std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      n += cmd.find(fmt::format("v4b-sandbox-{}-", getpid())) != std::string::npos;
    }
    return n;
  }

  void TearDown() override {
    EXPECT_EQ(sandbox_processes(), 0) << "a sandboxed process outlived its run";
    // The harness still grades: the canonical answer passes after every attack.
    EXPECT_EQ(grade(problem_->canonical).status, "pass");
  }

  static Problem* problem_;
};
Problem* CodingAdversarial::problem_ = nullptr;

TEST_F(CodingAdversarial, CanonicalAnswerPasses) {
  EXPECT_EQ(grade(program("", "True")).status, "pass");  // the frame itself is a right answer
}

TEST_F(CodingAdversarial, InfiniteLoop) {
  const Grade g = grade(program("    while True:\n        pass\n", "True"));
  EXPECT_EQ(g.status, "timeout") << g.to_json().dump();
  EXPECT_LT(g.cpu_s, 10.0);
}

TEST_F(CodingAdversarial, InfiniteLoopThatSwallowsExceptions) {
  // `except BaseException` catches the per-test timer; RLIMIT_CPU still ends it.
  const Grade g = grade(program("    while True:\n        try:\n            while True:\n                pass\n"
                                "        except BaseException:\n            pass\n",
                                "True"));
  EXPECT_EQ(g.status, "timeout") << g.to_json().dump();
}

TEST_F(CodingAdversarial, ForkBomb) {
  const Grade g = grade(program("    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n", "True"));
  EXPECT_NE(g.status, "pass") << g.to_json().dump();
  EXPECT_FALSE(g.base_pass);
}

TEST_F(CodingAdversarial, TwentyGigabyteAllocation) {
  const Grade g = grade(program("    block = bytearray(20 * 1024 ** 3)\n", "len(block) > 0"));
  EXPECT_EQ(g.status, "oom") << g.to_json().dump();
}

TEST_F(CodingAdversarial, HugeFileWrite) {
  const Grade g = grade(program("    with open('huge.bin', 'wb') as f:\n        for _ in range(4096):\n"
                                "            f.write(b'0' * (1 << 20))\n",
                                "os.path.getsize('huge.bin') >= 4 << 30"));
  EXPECT_EQ(g.status, "error") << g.to_json().dump();
  EXPECT_NE(g.to_json().dump().find("File too large"), std::string::npos) << g.to_json().dump();
}

TEST_F(CodingAdversarial, WriteOutsideTheTempDir) {
  if (!sandbox_isolation().namespaces) GTEST_SKIP() << "this host gives no namespaces: " << sandbox_isolation().note;
  test::TempDir dir;
  std::filesystem::permissions(dir.path, std::filesystem::perms::all);  // even a world-writable directory
  const auto target = dir.path / "escaped.txt";
  const std::string tmp_target = fmt::format("/tmp/v4b-escaped-{}.txt", getpid());
  const Grade g = grade(program(fmt::format("    ok = 0\n    for path in ('{}', '{}'):\n        try:\n"
                                            "            open(path, 'w').write('x')\n            ok += 1\n"
                                            "        except OSError:\n            pass\n",
                                            target.string(), tmp_target),
                                "ok > 0"));
  EXPECT_NE(g.status, "pass") << g.to_json().dump();
  EXPECT_FALSE(std::filesystem::exists(target));
  EXPECT_FALSE(std::filesystem::exists(tmp_target));
}

TEST_F(CodingAdversarial, ReadTheParentsEnvironment) {
  const std::string secret = fmt::format("canary-{}", std::random_device{}());
  setenv("V4B_ADVERSARIAL_SECRET", secret.c_str(), 1);
  const Grade g = grade(program("    found = any(v.startswith('canary-') for v in os.environ.values())\n"
                                "    for pid in os.listdir('/proc'):\n"
                                "        try:\n"
                                "            found = found or b'V4B_ADVERSARIAL_SECRET' in open('/proc/%s/environ' % pid, 'rb').read()\n"
                                "        except (OSError, ValueError):\n"
                                "            pass\n"
                                "    try:\n"
                                "        found = found or b'V4B_ADVERSARIAL_SECRET' in open('/proc/%d/environ' % os.getppid(), 'rb').read()\n"
                                "    except OSError:\n"
                                "        pass\n",
                                "found"));
  unsetenv("V4B_ADVERSARIAL_SECRET");
  EXPECT_NE(g.status, "pass") << g.to_json().dump();
}

TEST_F(CodingAdversarial, OpenANetworkSocket) {
  if (!sandbox_isolation().namespaces) GTEST_SKIP() << "this host gives no namespaces: " << sandbox_isolation().note;
  // A listener on the host's loopback: the program must not reach it.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  const Grade g = grade(program(fmt::format("    try:\n        socket.create_connection(('127.0.0.1', {}), timeout=2).close()\n"
                                            "        reached = True\n    except OSError:\n        reached = False\n",
                                            port),
                                "reached"));
  pollfd p{fd, POLLIN, 0};
  const int ready = poll(&p, 1, 0);
  close(fd);
  EXPECT_EQ(ready, 0) << "the sandboxed program connected to the host";
  EXPECT_NE(g.status, "pass") << g.to_json().dump();
}

TEST_F(CodingAdversarial, KillItsProcessGroup) {
  const Grade g = grade(program("    os.killpg(os.getpgid(0), signal.SIGKILL)\n", "True"));
  // With namespaces its group is the sandbox's init, which a signal from inside cannot kill
  // (ProcessLookupError); without them the program kills itself. An error either way.
  EXPECT_EQ(g.status, "error") << g.to_json().dump();
}

TEST_F(CodingAdversarial, KillItsParentAndEverythingItCan) {
  // kill(-1) reaches every process of the program's user: safe only in a PID namespace or as a uid
  // of its own; run as this test's own user it would kill the test runner.
  if (!sandbox_isolation().namespaces && !sandbox_isolation().drops_root)
    GTEST_SKIP() << "the program would run as this user with no PID namespace: " << sandbox_isolation().note;
  const Grade g = grade(program("    for target in (os.getppid(), 1):\n        try:\n            os.kill(target, signal.SIGKILL)\n"
                                "        except OSError:\n            pass\n"
                                "    try:\n        os.kill(-1, signal.SIGKILL)\n    except OSError:\n        pass\n",
                                "False"));
  EXPECT_NE(g.status, "pass") << g.to_json().dump();
}

TEST_F(CodingAdversarial, CloseStdoutEarly) {
  // Closing its outputs, the verdict channel included, leaves no verdict: an error, not a hang.
  const Grade g = grade(program("    for fd in (1, 2, 3):\n        os.close(fd)\n", "True"));
  EXPECT_EQ(g.status, "error") << g.to_json().dump();
  EXPECT_LT(g.wall_s, 10.0);
}

TEST_F(CodingAdversarial, ForgeAVerdictOnTheChannel) {
  const Grade g = grade(program("    os.write(3, b'garbage that is not a verdict\\n{\"done\": true}\\n')\n    os._exit(0)\n", "True"));
  EXPECT_NE(g.status, "pass") << g.to_json().dump();
}

}  // namespace
}  // namespace v4b::evals::coding
