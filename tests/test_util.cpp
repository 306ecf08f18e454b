#include "tests/test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>
#include <sstream>
#include <stdexcept>

#include "common/errors.h"

namespace v4b::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "v4b-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CliResult run_cli(const std::string& args, const std::string& env) {
  TempDir io;
  const auto out = io.path / "out", err = io.path / "err";
  // exec so a signal that kills v4bench is seen by system() rather than absorbed by the shell.
  const std::string cmd = "env " + env + " " + V4BENCH_BIN + " " + args + " >" + out.string() + " 2>" + err.string() + " </dev/null";
  const int raw = std::system(("exec " + cmd).c_str());
  CliResult r;
  if (WIFEXITED(raw)) r.status = WEXITSTATUS(raw);
  if (WIFSIGNALED(raw)) r.signaled = true;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

void expect_usage_error(const CliResult& r, const std::string& needle) {
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_FALSE(r.signaled);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "want one line on stderr, got: " << r.err;
  EXPECT_EQ(r.err.rfind("v4bench: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr should name '" << needle << "': " << r.err;
}

void expect_throws_usage(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected a usage error naming '" << needle << "'";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

std::string write_raw_safetensors(const std::string& path, uint64_t header_len, const std::string& header, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(header_len >> (8 * i)));
  out << header << data;
  return path;
}

}  // namespace v4b::test
