// Internal: the per-ISA ceiling loops used by engine/core/probe.
#pragma once

#include <cstdint>

namespace v4b {

struct ProbeKernels {
  float (*sum_floats)(const float* p, int64_t n);  // n a multiple of 64
  float (*fma_chains)(int64_t iters, float seed);  // iters * 384 FLOPs
};

const ProbeKernels& probe_kernels_generic();
const ProbeKernels& probe_kernels_avx2();
const ProbeKernels& probe_kernels_avx512();

}  // namespace v4b
