// Runs an untrusted Python program in a child process that cannot reach the harness, the network or
// the file system outside a private scratch directory, and cannot outlive its time limits.
//
// Each run gets a fresh temporary directory holding the given files (read-only to the program) and a
// scratch directory `w/` it runs in. Where the kernel allows (root, or namespaces permitted), the
// program runs in new PID, network and mount namespaces: a small init process (PID 1) forks python3,
// the network has only a down loopback, the whole file system is remounted read-only except a
// size-capped tmpfs on `w/`, /proc shows only the sandbox's processes, and when the harness runs as
// root the program runs as an unprivileged uid of its own. Everywhere: its own session and process group, rlimits on CPU
// time, address space, file size, open files and processes, a scrubbed environment, stdin from
// /dev/null, stdout and stderr captured up to a cap, and a wall-clock backstop that kills the init
// (and so the namespace) or the whole process group. The program writes its verdict lines to fd 3.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace v4b::evals::coding {

struct SandboxLimits {
  double cpu_s = 10;                          // RLIMIT_CPU of python3 (hard limit one second later)
  double wall_s = 30;                         // backstop: the sandbox is killed after this
  int64_t address_space = int64_t{4} << 30;   // RLIMIT_AS
  int64_t file_size = int64_t{16} << 20;      // RLIMIT_FSIZE, and the size of the scratch tmpfs
  int64_t open_files = 128;                   // RLIMIT_NOFILE
  int64_t processes = 32;                     // RLIMIT_NPROC (counts every process of the user)
  size_t output_cap = size_t{64} << 10;       // bytes kept of stdout and of stderr (the rest is drained)
  size_t result_cap = size_t{512} << 20;      // bytes kept of the fd-3 verdict channel
};

struct SandboxFile {
  std::string name;  // plain file name inside the run directory
  std::string content;
};

struct SandboxRun {
  std::string out, err, result;  // stdout, stderr and fd 3, each capped
  bool out_truncated = false, err_truncated = false, result_truncated = false;
  int exit_code = -1;            // python3's exit status; -1 when it died by a signal
  int signal = 0;                // the signal that ended python3, or 0
  bool wall_killed = false;      // the backstop fired
  double wall_s = 0, cpu_s = 0;  // cpu_s: user + system of everything the sandbox ran
};

// How much isolation this process gets, probed once (the first call runs a trial sandbox).
struct SandboxIsolation {
  bool namespaces = false;  // PID + network + mount namespaces, read-only root, private /proc
  bool drops_root = false;  // the program runs as an unprivileged uid of its own (the harness is root)
  std::string python;       // the interpreter's path
  std::string python_version;
  std::string note;         // why isolation is reduced, or ""
};
const SandboxIsolation& sandbox_isolation();
nlohmann::json sandbox_isolation_json();

// Runs `python3 -B -s <dir>/<script>` with the files written to a fresh run directory.
// Throws std::runtime_error if the sandbox itself cannot be set up (no python3, no temp dir).
SandboxRun run_python(const std::vector<SandboxFile>& files, const std::string& script, const SandboxLimits& limits);

}  // namespace v4b::evals::coding
