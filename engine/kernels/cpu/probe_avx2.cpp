// avx2 build of the ceiling loops (see probe_impl.h).
#include "engine/kernels/cpu/probe_kernels.h"

namespace v4b {
namespace probe_avx2 {
#include "engine/kernels/cpu/probe_impl.h"
}  // namespace probe_avx2

const ProbeKernels& probe_kernels_avx2() {
  static const ProbeKernels k{probe_avx2::probe_impl::sum_floats, probe_avx2::probe_impl::fma_chains};
  return k;
}

}  // namespace v4b
