// Helpers shared by tests: temporary directories and running the v4bench binary.
#pragma once

#include <filesystem>
#include <functional>
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

// A file's bytes ("" when it cannot be read).
std::string slurp(const std::filesystem::path& p);

// Runs `v4bench ARGS` through the shell with extra environment assignments `env` ("A=1 B=2").
CliResult run_cli(const std::string& args, const std::string& env = "");

// A usage error: exit status 2, exactly one line on stderr, "v4bench: error: ..." naming `needle`.
void expect_usage_error(const CliResult& r, const std::string& needle);
// `fn` throws a UsageError whose message names `needle` (parameter validation, in process).
void expect_throws_usage(const std::function<void()>& fn, const std::string& needle);

// Writes a raw safetensors-like file: an 8-byte little-endian header length (given, so it can lie),
// the header text, then the data. Returns the path.
std::string write_raw_safetensors(const std::string& path, uint64_t header_len, const std::string& header, const std::string& data);

}  // namespace v4b::test
