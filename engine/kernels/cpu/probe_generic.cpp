// generic build of the ceiling loops (see probe_impl.h).
#include "engine/kernels/cpu/probe_kernels.h"

namespace v4b {
namespace probe_generic {
#include "engine/kernels/cpu/probe_impl.h"
}  // namespace probe_generic

const ProbeKernels& probe_kernels_generic() {
  static const ProbeKernels k{probe_generic::probe_impl::sum_floats, probe_generic::probe_impl::fma_chains};
  return k;
}

}  // namespace v4b
