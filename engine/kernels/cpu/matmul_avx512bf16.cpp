// FP8 GEMV with AVX512-BF16 dot products (compiled with -mavx512bf16 beside the AVX-512 flags).
//
// An E4M3 byte sign-extended to 16 bits and shifted left by 4 is, under the mask 0x87F0, the BF16
// value 2^-120 x (its true value) — exact for normal E4M3 codes. E4M3 subnormals (|x| < 2^-6 of the
// block's unit) become BF16 subnormals, which vdpbf16ps reads as zero: a documented flush, below a
// 1/28,000 fraction of the block's largest weight. Activations are rounded to BF16 — finer than the
// FP8 activations of the reference kernels — so this path's error bound is per format (tests).
#include "engine/kernels/cpu/matmul_kernels.h"

#include <cmath>

#include "engine/core/dtypes.h"

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#include <immintrin.h>

namespace v4b {

namespace {

constexpr int kFp8RawShift16 = 120;

template <int R>
void gemv_rows(const GemvArgs& a, int64_t n0, int64_t n1) {
  const WeightMatrix& w = *a.w;
  const int64_t K = w.cols, nkb = (K + 127) / 128, kfull = K / 128 * 128;
  const float unscale = std::ldexp(1.0f, kFp8RawShift16 - a.prescale), inv_prescale = std::ldexp(1.0f, -a.prescale);
  const bool ue8m0 = w.layout == WeightLayout::kFp8Ue8m0;
  const __m512i mask = _mm512_set1_epi16(static_cast<short>(0x87F0));
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* wr = static_cast<const uint8_t*>(w.data) + n * K;
    const uint8_t* s8 = static_cast<const uint8_t*>(w.scales) + (n / 128) * nkb;
    const float* s32 = static_cast<const float*>(w.scales) + (n / 128) * nkb;
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t k0 = 0; k0 < kfull; k0 += 128) {
      __m512 p[R][2];
      for (int r = 0; r < R; ++r) p[r][0] = p[r][1] = _mm512_setzero_ps();
#pragma GCC unroll 4
      for (int64_t k = k0; k < k0 + 128; k += 32) {
        const __m512i wide = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + k)));
        const __m512bh wv = (__m512bh)_mm512_and_si512(_mm512_slli_epi16(wide, 4), mask);
        const int half = static_cast<int>((k - k0) / 32) & 1;
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const __m512bh xv = (__m512bh)_mm512_loadu_si512(a.x_bf16 + r * a.ldx + k);
          p[r][half] = _mm512_dpbf16_ps(p[r][half], wv, xv);
        }
      }
      const float sc = (ue8m0 ? ue8m0_to_float(s8[k0 / 128]) : s32[k0 / 128]) * unscale;
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_add_ps(p[r][0], p[r][1]), _mm512_set1_ps(sc), acc[r]);
    }
    for (int r = 0; r < R; ++r) {
      float tail = 0;  // a last partial block, in scalar code on the FP32 activations
      if (kfull < K) {
        const float sc = ue8m0 ? ue8m0_to_float(s8[nkb - 1]) : s32[nkb - 1];
        for (int64_t k = kfull; k < K; ++k) tail += e4m3_to_float(wr[k]) * a.x[r * a.ldx + k];
        tail *= sc * inv_prescale;
      }
      a.y[r * a.ldy + n] = _mm512_reduce_add_ps(acc[r]) + tail;
    }
  }
}

void gemv(const GemvArgs& a, int64_t n0, int64_t n1) {
  switch (a.m) {
    case 1: return gemv_rows<1>(a, n0, n1);
    case 2: return gemv_rows<2>(a, n0, n1);
    case 3: return gemv_rows<3>(a, n0, n1);
    default: return gemv_rows<4>(a, n0, n1);
  }
}

}  // namespace

GemvFn gemv_fp8_bf16dot() {
  __builtin_cpu_init();
  static const GemvFn fn = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") ? gemv : nullptr;
  return fn;
}

}  // namespace v4b

#else
namespace v4b {
GemvFn gemv_fp8_bf16dot() { return nullptr; }
}  // namespace v4b
#endif
