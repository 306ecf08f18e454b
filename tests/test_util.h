// Helpers shared by tests: temporary directories and running the v4bench binary.
#pragma once

#include <filesystem>
#include <string>

namespace v4b::test {

struct TempDir {
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path path;
};

struct CliResult {
  int status = -1;        // exit status when the process exited
  bool signaled = false;  // killed by a signal
  std::string out, err;
};

// Runs `v4bench ARGS` through the shell with extra environment assignments `env` ("A=1 B=2").
CliResult run_cli(const std::string& args, const std::string& env = "");

}  // namespace v4b::test
