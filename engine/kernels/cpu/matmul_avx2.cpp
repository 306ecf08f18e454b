// AVX2 + FMA build of the matmul kernels (compiled with -mavx2 -mfma -mf16c).
#include "engine/kernels/cpu/matmul_impl.h"

#if defined(__AVX2__)
#include <immintrin.h>

namespace v4b {
namespace isa_avx2 {

struct Isa {
  using V = __m256;
  static constexpr int kW = 8, kMr = 6;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static V bf16(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
  static V fp8_raw(const uint8_t* p) {
    const __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(v, 20), _mm256_set1_epi32(static_cast<int>(0x87F00000u))));
  }
  // vpermps indexes 8 entries: look up the magnitude, then move bit 3 of the code into the sign.
  static V e2m1(__m256i code) {
    const __m256 mag = _mm256_permutevar8x32_ps(_mm256_loadu_ps(kE2m1Lut.data()), code);
    const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(code, 28), _mm256_set1_epi32(static_cast<int>(0x80000000u)));
    return _mm256_or_ps(mag, _mm256_castsi256_ps(sign));
  }
  static void fp4(const uint8_t* p, V& even, V& odd) {
    const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    even = e2m1(b);
    odd = e2m1(_mm256_srli_epi32(b, 4));
  }
};

using Impl = MatmulImpl<Isa>;

}  // namespace isa_avx2

const MatmulKernels& matmul_kernels_avx2() {
  static const MatmulKernels k{isa_avx2::Impl::gemv, isa_avx2::Impl::gemm, isa_avx2::Impl::kNr, isa_avx2::Impl::kMr, isa_avx2::Impl::pack_a, isa_avx2::Impl::gemm_nt, isa_avx2::Impl::gemm_nn};
  return k;
}

}  // namespace v4b

#else
namespace v4b {
const MatmulKernels& matmul_kernels_avx2() { return matmul_kernels_generic(); }
}  // namespace v4b
#endif
