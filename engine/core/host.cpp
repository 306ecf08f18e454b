#include "engine/core/host.h"

#include <sys/utsname.h>
#include <unistd.h>

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

nlohmann::json host_context() {
  utsname u{};
  uname(&u);
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
  return {
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
}

}  // namespace v4b
