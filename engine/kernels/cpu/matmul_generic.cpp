// Portable scalar build of the matmul kernels (one lane per "vector").
#include <bit>

#include "engine/kernels/cpu/matmul_impl.h"

namespace v4b {
namespace isa_generic {

struct Isa {
  using V = float;
  static constexpr int kW = 1, kMr = 4;
  static V zero() { return 0.0f; }
  static V set1(float v) { return v; }
  static V load(const float* p) { return *p; }
  static void store(float* p, V v) { *p = v; }
  static V fma(V a, V b, V c) { return std::fma(a, b, c); }
  static V add(V a, V b) { return a + b; }
  static float hsum(V v) { return v; }
  static V bf16(const uint16_t* p) { return bf16_to_float(Bf16{*p}); }
  static V fp8_raw(const uint8_t* p) {
    const auto bits = static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(*p))) << 20;
    return std::bit_cast<float>(bits & 0x87F00000u);
  }
  static void fp4(const uint8_t* p, V& even, V& odd) {
    even = kE2m1Lut[*p & 0xF];
    odd = kE2m1Lut[*p >> 4];
  }
};

using Impl = MatmulImpl<Isa>;

}  // namespace isa_generic

const MatmulKernels& matmul_kernels_generic() {
  static const MatmulKernels k{isa_generic::Impl::gemv, isa_generic::Impl::gemm, isa_generic::Impl::kNr, isa_generic::Impl::kMr, isa_generic::Impl::pack_a, isa_generic::Impl::gemm_nt, isa_generic::Impl::gemm_nn};
  return k;
}

}  // namespace v4b
