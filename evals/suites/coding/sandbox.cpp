#include "evals/suites/coding/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/mount.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

namespace v4b::evals::coding {

namespace {

namespace fs = std::filesystem;

// Under root each sandbox runs as a uid of its own, unused by any account: RLIMIT_NPROC counts a user's
// processes system-wide, so a shared uid (nobody) would let one sandbox's fork bomb starve another's
// exec, and kill(-1) could reach a neighbour. 1e9 + 16 bits of the harness pid + a 16-bit counter.
constexpr uid_t kSandboxUidBase = 1000000000;
std::atomic<uint32_t> g_sandbox_serial{0};

uid_t next_sandbox_uid() {
  return kSandboxUidBase + ((static_cast<uid_t>(getpid()) & 0x3FFF) << 16) + (g_sandbox_serial++ & 0xFFFF);
}
constexpr int kSetupFailed = 125;  // init's exit status when it could not build the sandbox
constexpr const char* kSetupTag = "v4bench sandbox: ";

// The system interpreter first: a PATH entry may be a shim (pyenv) that needs the very environment
// the sandbox scrubs, or live under a home directory an unprivileged uid cannot enter.
std::string find_python() {
  if (const char* env = std::getenv("V4BENCH_PYTHON"); env != nullptr && *env != '\0') return env;
  for (const char* p : {"/usr/bin/python3", "/usr/local/bin/python3"})
    if (access(p, X_OK) == 0) return p;
  const char* path = std::getenv("PATH");
  const std::string dirs = path != nullptr ? path : "";
  size_t start = 0;
  while (start < dirs.size()) {
    const size_t colon = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate = dirs.substr(start, colon - start) + "/python3";
    if (colon > start && access(candidate.c_str(), X_OK) == 0) return candidate;
    start = colon + 1;
  }
  throw std::runtime_error("python3 not found in /usr/bin, /usr/local/bin or PATH (set V4BENCH_PYTHON to the interpreter)");
}

// Everything the child needs, prepared before the fork: between fork and exec the child makes
// system calls only (the harness is multithreaded; malloc or locks there could deadlock).
struct ChildPlan {
  std::vector<std::string> argv_s, env_s;
  std::vector<char*> argv, envp;
  std::string work, tmpfs_opts;
  bool namespaces = false, drop_uid = false;
  uid_t uid = 0;  // with drop_uid: the sandbox's own uid (and gid)
  SandboxLimits limits;
  int fds[4] = {-1, -1, -1, -1};  // stdin (/dev/null), stdout, stderr, verdict channel
};

void say(const char* s) { [[maybe_unused]] ssize_t n = write(2, s, std::strlen(s)); }

[[noreturn]] void child_fail(const char* what) {
  const int err = errno;
  char num[16];
  int i = 15;
  num[i] = '\0';
  unsigned v = static_cast<unsigned>(err);
  do num[--i] = static_cast<char>('0' + v % 10);
  while ((v /= 10) != 0 && i > 0);
  say(kSetupTag);
  say(what);
  say(" failed (errno ");
  say(num + i);
  say(")\n");
  _exit(kSetupFailed);
}

void set_limit(int resource, rlim_t soft, rlim_t hard, const char* what) {
  const rlimit rl{soft, hard};
  if (setrlimit(resource, &rl) != 0) child_fail(what);
}

[[noreturn]] void exec_python(const ChildPlan& p) {
  const auto cpu = static_cast<rlim_t>(std::ceil(std::max(p.limits.cpu_s, 0.01)));
  set_limit(RLIMIT_CPU, cpu, cpu + 1, "RLIMIT_CPU");
  set_limit(RLIMIT_AS, static_cast<rlim_t>(p.limits.address_space), static_cast<rlim_t>(p.limits.address_space), "RLIMIT_AS");
  set_limit(RLIMIT_FSIZE, static_cast<rlim_t>(p.limits.file_size), static_cast<rlim_t>(p.limits.file_size), "RLIMIT_FSIZE");
  set_limit(RLIMIT_NOFILE, static_cast<rlim_t>(p.limits.open_files), static_cast<rlim_t>(p.limits.open_files), "RLIMIT_NOFILE");
  set_limit(RLIMIT_NPROC, static_cast<rlim_t>(p.limits.processes), static_cast<rlim_t>(p.limits.processes), "RLIMIT_NPROC");
  set_limit(RLIMIT_CORE, 0, 0, "RLIMIT_CORE");
  if (chdir(p.work.c_str()) != 0) child_fail("chdir to the scratch directory");
  // RLIMIT_NPROC is not enforced for root: dropping to a uid of its own makes it bite (and closes
  // root's files). Raw system calls: glibc's setuid() signals every thread it believes exists, and in
  // a process cloned from a multithreaded harness those threads are not there.
  if (p.drop_uid && (syscall(SYS_setgroups, 0, nullptr) != 0 || syscall(SYS_setgid, p.uid) != 0 || syscall(SYS_setuid, p.uid) != 0))
    child_fail("dropping root");
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // after the uid change, which clears it: python dies with its init
  execve(p.argv[0], p.argv.data(), p.envp.data());
  child_fail("exec python3");
}

// The sandbox's init: PID 1 of its namespaces (or a plain session leader without them). Builds the
// mount view, forks python3, reaps everything, and exits with python3's status (128 + signal when it
// died by one); its exit tears the PID namespace down with every process the program left.
[[noreturn]] void run_init(const ChildPlan& p, pid_t harness) {
  // If the harness dies (Ctrl-C, a crash), its wall-clock backstop dies with it: so does the sandbox.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (!p.namespaces && getppid() != harness) _exit(kSetupFailed);  // it already died (in a namespace ppid reads 0)
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int high[4];
  for (int i = 0; i < 4; ++i) high[i] = fcntl(p.fds[i], F_DUPFD, 10);  // out of the way of 0..3
  for (int i = 0; i < 4; ++i)
    if (high[i] < 0 || dup2(high[i], i) != i) child_fail("setting up stdio");
  if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0)
    for (int fd = 4; fd < 1024; ++fd) close(fd);
  if (setsid() < 0) child_fail("setsid");
  if (p.namespaces) {
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) child_fail("making mounts private");
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) child_fail("mounting /proc");
    if (mount("tmpfs", p.work.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, p.tmpfs_opts.c_str()) != 0) child_fail("mounting the scratch tmpfs");
    mount_attr ro{};
    ro.attr_set = MOUNT_ATTR_RDONLY;
    if (syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof ro) != 0) child_fail("remounting / read-only");
    mount_attr rw{};
    rw.attr_clr = MOUNT_ATTR_RDONLY;
    if (syscall(SYS_mount_setattr, AT_FDCWD, p.work.c_str(), 0, &rw, sizeof rw) != 0) child_fail("making the scratch writable");
  }
  // A raw clone, not fork(): glibc's fork takes malloc's locks, which another harness thread may have
  // held at the moment this process was cloned from it.
  const auto py = static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (py < 0) child_fail("fork");
  if (py == 0) exec_python(p);
  // Only python3 and its children hold the pipes now, so the harness sees EOF when they are gone.
  dup2(0, 1);
  dup2(0, 2);
  close(3);
  int status = 0;
  for (;;) {
    int st = 0;
    const pid_t w = waitpid(-1, &st, 0);
    if (w == py) {
      status = st;
      break;
    }
    if (w < 0 && errno != EINTR) break;
  }
  _exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
}

// A fresh run directory, removed with everything in it when the run is over.
struct RunDir {
  fs::path path;
  RunDir() {
    // The harness's pid in the name tells whose sandbox a stray process was.
    std::string tmpl = (fs::temp_directory_path() / fmt::format("v4b-sandbox-{}-XXXXXX", getpid())).string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error(fmt::format("cannot create a sandbox directory in {}", fs::temp_directory_path().string()));
    path = tmpl;
    fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                              fs::perms::others_exec);
  }
  ~RunDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;
};

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) close(r);
    if (w >= 0) close(w);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  void close_w() {
    if (w >= 0) close(w);
    w = -1;
  }
};

// Keeps the first `cap` bytes of a stream and drains the rest.
struct Capture {
  std::string* text;
  bool* truncated;
  size_t cap;
  bool open = true;
  void read_from(int fd) {
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) {
        const size_t keep = std::min(static_cast<size_t>(n), cap - std::min(cap, text->size()));
        text->append(buf, keep);
        if (keep < static_cast<size_t>(n)) *truncated = true;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) open = false;
      return;
    }
  }
};

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

SandboxRun run_in_sandbox(const std::vector<SandboxFile>& files, const std::string& script, const SandboxLimits& limits,
                          const std::string& python, bool namespaces, bool drop_uid) {
  RunDir dir;
  for (const auto& f : files) {
    std::ofstream out(dir.path / f.name, std::ios::binary);
    if (!out || !(out << f.content)) throw std::runtime_error(fmt::format("cannot write {} in the sandbox directory", f.name));
  }
  const fs::path work = dir.path / "w";
  fs::create_directory(work);
  const uid_t uid = drop_uid ? next_sandbox_uid() : 0;
  if (drop_uid && !namespaces && chown(work.c_str(), uid, uid) != 0)
    throw std::runtime_error(fmt::format("chown {}: {}", work.string(), std::strerror(errno)));

  ChildPlan plan;
  plan.argv_s = {python, "-B", "-s", (dir.path / script).string()};
  plan.env_s = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + work.string(), "TMPDIR=" + work.string(), "LANG=C.UTF-8",
                "LC_ALL=C.UTF-8", "PYTHONHASHSEED=0", "PYTHONIOENCODING=utf-8"};
  for (auto& s : plan.argv_s) plan.argv.push_back(s.data());
  plan.argv.push_back(nullptr);
  for (auto& s : plan.env_s) plan.envp.push_back(s.data());
  plan.envp.push_back(nullptr);
  plan.work = work.string();
  plan.tmpfs_opts = fmt::format("size={},nr_inodes=4096,mode=0700{}", limits.file_size, drop_uid ? fmt::format(",uid={0},gid={0}", uid) : "");
  plan.namespaces = namespaces;
  plan.drop_uid = drop_uid;
  plan.uid = uid;
  plan.limits = limits;

  Pipe out, err, res;
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) throw std::runtime_error("cannot open /dev/null");
  plan.fds[0] = devnull;
  plan.fds[1] = out.w;
  plan.fds[2] = err.w;
  plan.fds[3] = res.w;

  const pid_t harness = getpid();
  const double t0 = now_s();
  const pid_t pid = namespaces
                        ? static_cast<pid_t>(syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | SIGCHLD, nullptr, nullptr, nullptr, nullptr))
                        : fork();
  if (pid == 0) run_init(plan, harness);
  const int clone_errno = errno;
  close(devnull);
  out.close_w();
  err.close_w();
  res.close_w();
  if (pid < 0) throw std::runtime_error(fmt::format("{}: {}", namespaces ? "clone(CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWNS)" : "fork",
                                                    std::strerror(clone_errno)));

  SandboxRun run;
  Capture caps[3] = {{&run.out, &run.out_truncated, limits.output_cap},
                     {&run.err, &run.err_truncated, limits.output_cap},
                     {&run.result, &run.result_truncated, limits.result_cap}};
  const int fds[3] = {out.r, err.r, res.r};
  for (int fd : fds) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

  const double deadline = t0 + limits.wall_s;
  bool exited = false;
  double drain_until = 0;
  for (;;) {
    if (!exited) {
      siginfo_t info{};
      // WNOWAIT keeps the init a zombie, so its pid (our process group id) cannot be reused yet.
      if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) {
        exited = true;
        killpg(pid, SIGKILL);  // without namespaces: whatever the program left in its group
        drain_until = now_s() + 0.2;
      } else if (now_s() >= deadline) {
        run.wall_killed = true;
        kill(pid, SIGKILL);  // with namespaces, init's death kills every process in them
        killpg(pid, SIGKILL);
      }
    }
    pollfd pfds[3];
    int n = 0;
    int which[3];
    for (int i = 0; i < 3; ++i)
      if (caps[i].open) {
        pfds[n] = {fds[i], POLLIN, 0};
        which[n++] = i;
      }
    if (n == 0 && exited) break;
    if (exited && now_s() >= drain_until) break;
    const int wait_ms = exited ? 20 : 50;
    if (n > 0) {
      if (poll(pfds, static_cast<nfds_t>(n), wait_ms) > 0)
        for (int i = 0; i < n; ++i)
          if (pfds[i].revents != 0) caps[which[i]].read_from(pfds[i].fd);
    } else {
      usleep(wait_ms * 1000);
    }
  }
  int status = 0;
  rusage ru{};
  while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  run.wall_s = now_s() - t0;
  run.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  if (WIFSIGNALED(status)) {
    run.signal = WTERMSIG(status);
  } else {
    const int code = WEXITSTATUS(status);
    if (code == kSetupFailed && run.err.rfind(kSetupTag, 0) == 0) throw std::runtime_error(run.err.substr(0, run.err.find('\n')));
    if (code > 128 && code < 128 + 65) run.signal = code - 128;
    else run.exit_code = code;
  }
  return run;
}

SandboxIsolation probe_isolation() {
  SandboxIsolation iso;
  iso.python = find_python();
  iso.drops_root = geteuid() == 0;
  SandboxLimits l;
  l.cpu_s = 10;
  l.wall_s = 20;
  const std::vector<SandboxFile> files = {{"probe.py", "import sys\nprint(sys.version.split()[0])\n"}};
  SandboxRun r;
  const char* mode = std::getenv("V4BENCH_SANDBOX");  // "plain": no namespaces (tests the fallback path)
  if (mode != nullptr && std::string(mode) == "plain") {
    iso.note = "namespaces disabled by V4BENCH_SANDBOX=plain: no network isolation, no read-only root, no private /proc";
  } else {
    try {
      r = run_in_sandbox(files, "probe.py", l, iso.python, true, iso.drops_root);
      iso.namespaces = r.exit_code == 0;
      if (!iso.namespaces) iso.note = fmt::format("namespaces unavailable: the trial run exited {} ({})", r.exit_code, r.err.substr(0, 200));
    } catch (const std::exception& e) {
      iso.note = fmt::format("namespaces unavailable ({}): no network isolation, no read-only root, no private /proc", e.what());
    }
  }
  if (!iso.namespaces) r = run_in_sandbox(files, "probe.py", l, iso.python, false, iso.drops_root);
  if (r.exit_code != 0) throw std::runtime_error(fmt::format("{} does not run in the sandbox: {}", iso.python, r.err.substr(0, 300)));
  std::string version = r.out;
  while (!version.empty() && std::isspace(static_cast<unsigned char>(version.back()))) version.pop_back();
  iso.python_version = version;
  if (!iso.drops_root && iso.note.empty()) iso.note = "not root: the program runs as this user";
  return iso;
}

}  // namespace

const SandboxIsolation& sandbox_isolation() {
  static const SandboxIsolation iso = probe_isolation();
  return iso;
}

nlohmann::json sandbox_isolation_json() {
  const SandboxIsolation& iso = sandbox_isolation();
  return {{"namespaces", iso.namespaces ? "pid, net, mount (read-only root, private /proc, tmpfs scratch)" : "none"},
          {"network", iso.namespaces ? "none (empty network namespace)" : "host network (not isolated)"},
          {"user", iso.drops_root ? "a uid of its own per program (1000000000 + ...)" : "the harness's user"},
          {"python", iso.python + " " + iso.python_version},
          {"note", iso.note}};
}

SandboxRun run_python(const std::vector<SandboxFile>& files, const std::string& script, const SandboxLimits& limits) {
  const SandboxIsolation& iso = sandbox_isolation();
  return run_in_sandbox(files, script, limits, iso.python, iso.namespaces, iso.drops_root);
}

}  // namespace v4b::evals::coding
