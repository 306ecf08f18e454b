// AVX-512 build of the matmul kernels (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq).
#include "engine/kernels/cpu/matmul_impl.h"

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>

namespace v4b {
namespace isa_avx512 {

struct Isa {
  using V = __m512;
  // 8-row tiles (16 accumulators) measured faster than 12-row ones on Zen 4 at batch 64 and 512.
  static constexpr int kW = 16, kMr = 8;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static float hsum(V v) { return _mm512_reduce_add_ps(v); }
  static V bf16(const uint16_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
  }
  // Sign-extending the byte puts copies of the sign above bit 27; the mask keeps bit 31 and the
  // seven exponent/mantissa bits at 26..20.
  // Two 256-bit sign extensions beat one 512-bit one on Zen 4 (benches/bench_matmul.cpp, one core: 11.5 -> 16.0 GB/s).
  static V fp8_raw(const uint8_t* p) {
    const __m256i lo = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    const __m256i hi = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8)));
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(v, 20), _mm512_set1_epi32(static_cast<int>(0x87F00000u))));
  }
  // vpermps reads only the low four bits of each index: the E2M1 code of the low nibble as is.
  static void fp4(const uint8_t* p, V& even, V& odd) {
    const __m512 lut = _mm512_loadu_ps(kE2m1Lut.data());
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    even = _mm512_permutexvar_ps(b, lut);
    odd = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), lut);
  }
};

using Impl = MatmulImpl<Isa>;

}  // namespace isa_avx512

const MatmulKernels& matmul_kernels_avx512() {
  static const MatmulKernels k{isa_avx512::Impl::gemv, isa_avx512::Impl::gemm, isa_avx512::Impl::kNr, isa_avx512::Impl::kMr, isa_avx512::Impl::pack_a, isa_avx512::Impl::gemm_nt, isa_avx512::Impl::gemm_nn};
  return k;
}

}  // namespace v4b

#else
namespace v4b {
const MatmulKernels& matmul_kernels_avx512() { return matmul_kernels_avx2(); }
}  // namespace v4b
#endif
