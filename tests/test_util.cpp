#include "tests/test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

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

namespace {
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

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

}  // namespace v4b::test
