// Which vector instruction set the CPU kernels use. Chosen once at run time from cpuid; the
// environment variable V4BENCH_ISA=generic|avx2|avx512 caps it (tests use it to cover every path).
#pragma once

#include <string_view>

namespace v4b {

enum class CpuIsa { kAuto, kGeneric, kAvx2, kAvx512 };

std::string_view cpu_isa_name(CpuIsa isa);
// The best supported ISA, capped by V4BENCH_ISA.
CpuIsa best_cpu_isa();
// `want` if the CPU supports it, else the best supported one below it; kAuto gives best_cpu_isa().
CpuIsa resolve_cpu_isa(CpuIsa want);

}  // namespace v4b
