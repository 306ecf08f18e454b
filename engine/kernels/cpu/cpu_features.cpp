#include "engine/kernels/cpu/cpu_features.h"

#include <cstdlib>
#include <string>

namespace v4b {

std::string_view cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAuto: return "auto";
    case CpuIsa::kGeneric: return "generic";
    case CpuIsa::kAvx2: return "avx2";
    case CpuIsa::kAvx512: return "avx512";
  }
  return "?";
}

namespace {

CpuIsa hardware_isa() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    return CpuIsa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return CpuIsa::kAvx2;
#endif
  return CpuIsa::kGeneric;
}

CpuIsa env_cap() {
  const char* v = std::getenv("V4BENCH_ISA");
  if (!v) return CpuIsa::kAvx512;
  const std::string s = v;
  if (s == "generic") return CpuIsa::kGeneric;
  if (s == "avx2") return CpuIsa::kAvx2;
  return CpuIsa::kAvx512;
}

}  // namespace

CpuIsa best_cpu_isa() {
  static const CpuIsa best = [] {
    const CpuIsa hw = hardware_isa(), cap = env_cap();
    return static_cast<int>(hw) < static_cast<int>(cap) ? hw : cap;
  }();
  return best;
}

CpuIsa resolve_cpu_isa(CpuIsa want) {
  const CpuIsa best = best_cpu_isa();
  if (want == CpuIsa::kAuto) return best;
  return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

}  // namespace v4b
