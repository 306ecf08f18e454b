#include "common/host.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>

#include "v4b/build_info.h"

namespace v4b {

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

nlohmann::json isa_flags() {
  nlohmann::json flags = nlohmann::json::array();
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) flags.push_back("sse4.2");
  if (__builtin_cpu_supports("avx")) flags.push_back("avx");
  if (__builtin_cpu_supports("avx2")) flags.push_back("avx2");
  if (__builtin_cpu_supports("fma")) flags.push_back("fma");
  if (__builtin_cpu_supports("f16c")) flags.push_back("f16c");
  if (__builtin_cpu_supports("avx512f")) flags.push_back("avx512f");
  if (__builtin_cpu_supports("avx512bw")) flags.push_back("avx512bw");
  if (__builtin_cpu_supports("avx512vl")) flags.push_back("avx512vl");
  if (__builtin_cpu_supports("avx512vnni")) flags.push_back("avx512vnni");
  if (__builtin_cpu_supports("avx512bf16")) flags.push_back("avx512bf16");
#elif defined(__aarch64__)
  flags.push_back("neon");
#endif
  return flags;
}

}  // namespace

std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ceilings_cache_path() {
  std::string dir;
  if (const char* v = std::getenv("V4BENCH_CACHE_DIR"); v && *v) dir = v;
  else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) dir = std::string(x) + "/v4bench";
  else if (const char* h = std::getenv("HOME"); h && *h) dir = std::string(h) + "/.cache/v4bench";
  else dir = ".v4bench-cache";
  utsname u{};
  uname(&u);
  return dir + "/ceilings-" + u.nodename + ".json";
}

nlohmann::json host_context() {
  utsname u{};
  uname(&u);
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
  nlohmann::json ceilings;
  if (std::ifstream in(ceilings_cache_path()); in) ceilings = nlohmann::json::parse(in, nullptr, false);
  nlohmann::json host = {
      {"cpu", cpu_model()},
      {"arch", u.machine},
      {"logical_cores", std::thread::hardware_concurrency()},
      {"isa", isa_flags()},
      {"memory_bytes", static_cast<int64_t>(pages) * page_size},
      {"os", std::string(u.sysname) + " " + u.release},
      {"hostname", u.nodename},
      #ifdef __clang__
      {"compiler", std::string("clang ") + __clang_version__},
#else
      {"compiler", std::string("gcc ") + __VERSION__},
#endif
      {"build_type", V4B_BUILD_TYPE},
      {"engine_commit", V4B_ENGINE_COMMIT},
      {"v4bench_version", V4B_VERSION},
  };
  if (ceilings.is_object()) host["ceilings"] = ceilings;
  return host;
}

}  // namespace v4b
