// GEMV with AVX512-BF16 dot products for FP8, MXFP4 and BF16 weights (compiled with -mavx512bf16
// and -mavx512vnni beside the AVX-512 flags; each kernel checks its own CPU feature): weights
// widened to BF16 exactly, activations rounded to BF16 once per call (bf16dot_activations),
// vdpbf16ps doing two multiply-adds per lane.
//
// An E4M3 byte sign-extended to 16 bits and shifted left by 4 is, under the mask 0x87F0, the BF16
// value 2^-120 x (its true value) — exact for normal E4M3 codes. E4M3 subnormals (|x| < 2^-6 of the
// block's unit) become BF16 subnormals, which vdpbf16ps reads as zero: a documented flush, below a
// 1/28,000 fraction of the block's largest weight. Activations are rounded to BF16 — finer than the
// FP8 activations of the reference kernels — so this path's error bound is per format (tests).
#include "engine/kernels/cpu/matmul_kernels.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/core/dtypes.h"

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#include <immintrin.h>

namespace v4b {

namespace {

constexpr int kFp8RawShift16 = 120;

// UE8M0 scale bytes as floats, by one load (ue8m0_to_float branches on its two special codes).
const std::array<float, 256> kUe8m0 = [] {
  std::array<float, 256> t{};
  for (int e = 0; e < 256; ++e) t[e] = ue8m0_to_float(static_cast<uint8_t>(e));
  return t;
}();

// 32 E4M3 bytes as BF16 values times 2^-120 (exact for normal codes; see the file comment).
inline __m512bh fp8_bf16(const uint8_t* p) {
  const __m512i wide = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return (__m512bh)_mm512_and_si512(_mm512_slli_epi16(wide, 4), _mm512_set1_epi16(static_cast<short>(0x87F0)));
}

// Each 128-column block in four explicit 32-column steps over two accumulators per row: (0, 64)
// and (32, 96). Written out so the accumulators stay in registers.
template <int R>
void gemv_rows(const GemvArgs& a, int64_t n0, int64_t n1) {
  const WeightMatrix& w = *a.w;
  const int64_t K = w.cols, nkb = (K + 127) / 128, kfull = K / 128 * 128;
  const float unscale = std::ldexp(1.0f, kFp8RawShift16 - a.prescale), inv_prescale = std::ldexp(1.0f, -a.prescale);
  const bool ue8m0 = w.layout == WeightLayout::kFp8Ue8m0;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* wr = static_cast<const uint8_t*>(w.data) + n * K;
    const uint8_t* s8 = static_cast<const uint8_t*>(w.scales) + (n / 128) * nkb;
    const float* s32 = static_cast<const float*>(w.scales) + (n / 128) * nkb;
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t k0 = 0; k0 < kfull; k0 += 128) {
      const __m512bh w0 = fp8_bf16(wr + k0), w1 = fp8_bf16(wr + k0 + 32), w2 = fp8_bf16(wr + k0 + 64), w3 = fp8_bf16(wr + k0 + 96);
      const __m512 sc = _mm512_set1_ps((ue8m0 ? kUe8m0[s8[k0 / 128]] : s32[k0 / 128]) * unscale);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const uint16_t* x = a.x_bf16 + r * a.ldx + k0;
        __m512 p0 = _mm512_dpbf16_ps(_mm512_setzero_ps(), w0, (__m512bh)_mm512_loadu_si512(x));
        __m512 p1 = _mm512_dpbf16_ps(_mm512_setzero_ps(), w1, (__m512bh)_mm512_loadu_si512(x + 32));
        p0 = _mm512_dpbf16_ps(p0, w2, (__m512bh)_mm512_loadu_si512(x + 64));
        p1 = _mm512_dpbf16_ps(p1, w3, (__m512bh)_mm512_loadu_si512(x + 96));
        acc[r] = _mm512_fmadd_ps(_mm512_add_ps(p0, p1), sc, acc[r]);
      }
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

// MXFP4, two 32-column blocks (32 bytes) per step: the bytes widened to words, and vpermw maps each
// nibble to its E2M1 value in BF16 (exact; the index's bit 4 is ignored by a table repeated twice).
// Low nibbles put elements 4j and 4j+2 in dword j, high nibbles 4j+1 and 4j+3, so the activations
// come in that order (bf16dot_activations); dwords 0..7 belong to the first block, 8..15 the second.
template <int R>
void gemv_mxfp4_rows(const GemvArgs& a, int64_t n0, int64_t n1) {
  const WeightMatrix& w = *a.w;
  const int64_t K = w.cols, nb = K / 32;
  static const __m512i lut = [] {
    alignas(64) uint16_t table[32];
    for (int i = 0; i < 32; ++i) table[i] = float_to_bf16(kE2m1Lut[i & 15]).bits;
    return _mm512_load_si512(table);
  }();
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* wr = static_cast<const uint8_t*>(w.data) + n * (K / 2);
    const uint8_t* sr = static_cast<const uint8_t*>(w.scales) + n * nb;
    // Two accumulators per row (alternate 64-column steps), so no step waits on the last one's sum.
    __m512 acc[2][R];
    for (int r = 0; r < R; ++r) acc[0][r] = acc[1][r] = _mm512_setzero_ps();
    auto step = [&](int64_t b, __m512* acc_b) {
      const __m512i wide = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + b * 16)));
      const __m512bh lo = (__m512bh)_mm512_permutexvar_epi16(wide, lut);
      const __m512bh hi = (__m512bh)_mm512_permutexvar_epi16(_mm512_srli_epi16(wide, 4), lut);
      const __m512 s = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(kUe8m0[sr[b]]), _mm512_set1_ps(kUe8m0[sr[b + 1]]));
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const uint16_t* xr = a.x_bf16 + r * a.ldx + b * 32;
        __m512 p = _mm512_dpbf16_ps(_mm512_setzero_ps(), lo, (__m512bh)_mm512_loadu_si512(xr));
        p = _mm512_dpbf16_ps(p, hi, (__m512bh)_mm512_loadu_si512(xr + 32));
        acc_b[r] = _mm512_fmadd_ps(p, s, acc_b[r]);
      }
    };
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
      step(b, acc[0]);
      step(b + 2, acc[1]);
    }
    if (b < nb) step(b, acc[0]);
    for (int r = 0; r < R; ++r) a.y[r * a.ldy + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][r], acc[1][r]));
  }
}

// BF16 weights: 32 columns per step, in their natural order.
template <int R>
void gemv_bf16_rows(const GemvArgs& a, int64_t n0, int64_t n1) {
  const WeightMatrix& w = *a.w;
  const int64_t K = w.cols;
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* wr = static_cast<const uint16_t*>(w.data) + n * K;
    __m512 acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 64) {
      const __m512bh w0 = (__m512bh)_mm512_loadu_si512(wr + k), w1 = (__m512bh)_mm512_loadu_si512(wr + k + 32);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], w0, (__m512bh)_mm512_loadu_si512(a.x_bf16 + r * a.ldx + k));
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], w1, (__m512bh)_mm512_loadu_si512(a.x_bf16 + r * a.ldx + k + 32));
      }
    }
    for (int r = 0; r < R; ++r) a.y[r * a.ldy + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
  }
}

template <void (*F1)(const GemvArgs&, int64_t, int64_t), void (*F2)(const GemvArgs&, int64_t, int64_t),
          void (*F3)(const GemvArgs&, int64_t, int64_t), void (*F4)(const GemvArgs&, int64_t, int64_t)>
void by_rows(const GemvArgs& a, int64_t n0, int64_t n1) {
  switch (a.m) {
    case 1: return F1(a, n0, n1);
    case 2: return F2(a, n0, n1);
    case 3: return F3(a, n0, n1);
    default: return F4(a, n0, n1);
  }
}

constexpr GemvFn kFp8Gemv = by_rows<gemv_rows<1>, gemv_rows<2>, gemv_rows<3>, gemv_rows<4>>;
constexpr GemvFn kMxfp4Gemv = by_rows<gemv_mxfp4_rows<1>, gemv_mxfp4_rows<2>, gemv_mxfp4_rows<3>, gemv_mxfp4_rows<4>>;
constexpr GemvFn kBf16Gemv = by_rows<gemv_bf16_rows<1>, gemv_bf16_rows<2>, gemv_bf16_rows<3>, gemv_bf16_rows<4>>;

// c = A · B over kp pairs: A an 8-row tile of BF16 pairs ([kp][8]), B a 32-column panel of BF16
// pairs ([kp][32]).
inline void tile_dot(const uint32_t* A, int64_t kp, const uint32_t* B, __m512 (&c)[8][2]) {
  for (int i = 0; i < 8; ++i) c[i][0] = c[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kp; ++k) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(B + k * 32), b1 = (__m512bh)_mm512_loadu_si512(B + k * 32 + 16);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(A[k * 8 + i]));
      c[i][0] = _mm512_dpbf16_ps(c[i][0], a, b0);
      c[i][1] = _mm512_dpbf16_ps(c[i][1], a, b1);
    }
  }
}

// Lanes [0, nr) of a 32-wide row as two 16-lane masks.
inline __mmask16 lanes(int nr) { return nr >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1); }

// C[0..mr)[0..nr) (+)= scale x A · B (tile_dot's operands); accumulate adds to what C holds.
void micro_bf16(const uint32_t* A, int64_t kp, const uint32_t* B, float* C, int64_t ldc, int mr, int nr, float scale,
                bool accumulate) {
  __m512 c[8][2];
  tile_dot(A, kp, B, c);
  const __m512 s = _mm512_set1_ps(scale);
  const __mmask16 m0 = lanes(nr), m1 = lanes(std::max(0, nr - 16));
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {  // unrolled, so c stays in registers
    if (i == mr) break;
    float* row = C + i * ldc;
    const __m512 y0 = accumulate ? _mm512_fmadd_ps(c[i][0], s, _mm512_maskz_loadu_ps(m0, row)) : _mm512_mul_ps(c[i][0], s);
    const __m512 y1 = accumulate ? _mm512_fmadd_ps(c[i][1], s, _mm512_maskz_loadu_ps(m1, row + 16)) : _mm512_mul_ps(c[i][1], s);
    _mm512_mask_storeu_ps(row, m0, y0);
    _mm512_mask_storeu_ps(row + 16, m1, y1);
  }
}

uint32_t bf16_pair(float lo, float hi) {
  return static_cast<uint32_t>(float_to_bf16(lo).bits) | static_cast<uint32_t>(float_to_bf16(hi).bits) << 16;
}

// ---- Weight GEMM: stored weights widened to BF16 panels, met by BF16 activation tiles -----------

// 32 consecutive floats (exact in BF16) as 16 BF16 pairs in natural order.
inline __m512i pairs_of(__m512 lo16, __m512 hi16) { return (__m512i)_mm512_cvtne2ps_pbh(hi16, lo16); }

// Row n of w, columns [k0, k0 + len) (len even; within one FP8 scale block), as len/2 BF16 pairs of
// exact values (unless a scale takes one below 2^-126, where vdpbf16ps reads it as zero). Returns the factor the products still need: the block scale of FP8 weights with
// float scales (not exact in BF16), else 1 (UE8M0 and MXFP4 scales are powers of two, folded in).
float decode_pairs(const WeightMatrix& w, int64_t n, int64_t k0, int64_t len, uint32_t* out) {
  const int64_t K = w.cols;
  int64_t k = 0;
  switch (w.layout) {
    case WeightLayout::kF32: {  // values exact in BF16 (matmul_bf16_exact)
      const float* p = static_cast<const float*>(w.data) + n * K + k0;
      for (; k + 32 <= len; k += 32) _mm512_storeu_si512(out + k / 2, pairs_of(_mm512_loadu_ps(p + k), _mm512_loadu_ps(p + k + 16)));
      for (; k < len; k += 2) out[k / 2] = bf16_pair(p[k], p[k + 1]);
      return 1.0f;
    }
    case WeightLayout::kBf16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + n * K + k0;
      std::memcpy(out, p, len * 2);
      return 1.0f;
    }
    case WeightLayout::kFp8Ue8m0:
    case WeightLayout::kFp8F32: {
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + n * K + k0;
      const int64_t i = (n / 128) * ((K + 127) / 128) + k0 / 128;
      const bool ue8m0 = w.layout == WeightLayout::kFp8Ue8m0;
      const float block = ue8m0 ? ue8m0_to_float(static_cast<const uint8_t*>(w.scales)[i]) : static_cast<const float*>(w.scales)[i];
      // Raw E4M3 as floats (true value x 2^-120, subnormal codes as float subnormals), then scaled
      // back exactly: normal results, so nothing is flushed on the way to BF16.
      const __m512 unraw = _mm512_set1_ps(std::ldexp(1.0f, kFp8RawShift16)), f = _mm512_set1_ps(ue8m0 ? block : 1.0f);
      const __m512i mask = _mm512_set1_epi32(static_cast<int>(0x87F00000u));
      auto raw16 = [&](const uint8_t* q) {
        const __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
        return _mm512_mul_ps(_mm512_mul_ps(_mm512_castsi512_ps(_mm512_and_si512(_mm512_slli_epi32(v, 20), mask)), unraw), f);
      };
      for (; k + 32 <= len; k += 32) _mm512_storeu_si512(out + k / 2, pairs_of(raw16(p + k), raw16(p + k + 16)));
      for (; k < len; k += 2) {
        const float s = ue8m0 ? block : 1.0f;
        out[k / 2] = bf16_pair(e4m3_to_float(p[k]) * s, e4m3_to_float(p[k + 1]) * s);
      }
      return ue8m0 ? 1.0f : block;
    }
    case WeightLayout::kMxfp4: {
      // 32-column blocks (16 bytes, low nibble = even column), each with its power-of-two scale.
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + n * (K / 2) + k0 / 2;
      const uint8_t* sc = static_cast<const uint8_t*>(w.scales) + n * (K / 32) + k0 / 32;
      const __m512 lut = _mm512_loadu_ps(kE2m1Lut.data());
      const __m512i keep_hi = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
      for (int64_t b = 0; b < len / 32; ++b) {
        const __m512 s = _mm512_set1_ps(kUe8m0[sc[b]]);
        const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + b * 16)));
        const __m512 even = _mm512_mul_ps(_mm512_permutexvar_ps(v, lut), s);
        const __m512 odd = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), lut), s);
        // Exact in BF16, so the pair is the top halves of the two floats.
        const __m512i pair = _mm512_or_si512(_mm512_srli_epi32(_mm512_castps_si512(even), 16),
                                             _mm512_and_si512(_mm512_castps_si512(odd), keep_hi));
        _mm512_storeu_si512(out + b * 16, pair);
      }
      return 1.0f;
    }
  }
  return 1.0f;
}

// r[i][e] -> r[e][i] for 16 vectors of 16 dwords: interleave dwords, then qwords (lane L of b[4g + c]
// then holds element 4L + c of rows 4g..4g+3), then move whole 128-bit lanes.
inline void transpose_16x16(__m512i (&r)[16]) {
  __m512i a[16], b[16];
  for (int i = 0; i < 16; i += 2) {
    a[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    a[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {
    b[g] = _mm512_unpacklo_epi64(a[g], a[g + 2]);
    b[g + 1] = _mm512_unpackhi_epi64(a[g], a[g + 2]);
    b[g + 2] = _mm512_unpacklo_epi64(a[g + 1], a[g + 3]);
    b[g + 3] = _mm512_unpackhi_epi64(a[g + 1], a[g + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i x0 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0x44), x1 = _mm512_shuffle_i32x4(b[c], b[4 + c], 0xEE);
    const __m512i y0 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0x44), y1 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], 0xEE);
    r[c] = _mm512_shuffle_i32x4(x0, y0, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(x0, y0, 0xDD);
    r[8 + c] = _mm512_shuffle_i32x4(x1, y1, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(x1, y1, 0xDD);
  }
}

// Rows [p0, p0 + nr) of w (nr <= 32), columns [k0, k0 + kc) (kc even, <= kGemmKc, within one FP8
// block), as a [kc/2][32] panel of BF16 pairs, zero beyond nr. Returns decode_pairs' factor (one FP8
// block per panel: 32 divides 128).
float widen_panel(const WeightMatrix& w, int64_t p0, int nr, int64_t k0, int64_t kc, uint32_t* panel) {
  alignas(64) uint32_t rows[32][kGemmKc / 2];
  float scale = 1.0f;
  for (int j = 0; j < nr; ++j) scale = decode_pairs(w, p0 + j, k0, kc, rows[j]);
  const int64_t kp = kc / 2;
  if (kp % 16 != 0) {  // a short last k-block
    for (int64_t kk = 0; kk < kp; ++kk)
      for (int j = 0; j < 32; ++j) panel[kk * 32 + j] = j < nr ? rows[j][kk] : 0u;
    return scale;
  }
  // 16 x 16 blocks transposed in registers (a scalar transpose cost up to a quarter of a GEMM).
  for (int j0 = 0; j0 < 32; j0 += 16)
    for (int64_t kk = 0; kk < kp; kk += 16) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i) r[i] = j0 + i < nr ? _mm512_load_si512(&rows[j0 + i][kk]) : _mm512_setzero_si512();
      transpose_16x16(r);
      for (int e = 0; e < 16; ++e) _mm512_store_si512(panel + (kk + e) * 32 + j0, r[e]);
    }
  return scale;
}

// Output columns [n0, n1) (a multiple of 32 apart, but for the last): each 32-row panel of W and
// k-block (256 columns, or 128 with float block scales) is widened once into an L1 panel and met
// by every activation tile, whose outputs (M x 32 floats) stay in L2 while the k-blocks
// accumulate into them.
void gemm_bf16_weights(const Bf16WeightGemmArgs& g, int64_t n0, int64_t n1) {
  const WeightMatrix& w = *g.w;
  const int64_t K = w.cols, kp_all = K / 2, tiles = (g.m + 7) / 8;
  // Float block scales apply per 128-column block; other layouts' products sum over kWideKc
  // columns in registers before they meet C (half the loads and stores of C: batch 512 of a
  // 14336x4096 BF16 matrix 340 -> 400 GFLOP/s).
  constexpr int64_t kWideKc = 2 * kGemmKc;
  const int64_t kb = w.layout == WeightLayout::kFp8F32 ? kGemmKc : kWideKc;
  alignas(64) uint32_t panel[kWideKc / 2 * 32];
  for (int64_t p0 = n0; p0 < n1; p0 += 32) {
    const int nr = static_cast<int>(std::min<int64_t>(32, n1 - p0));
    for (int64_t k0 = 0; k0 < K; k0 += kb) {
      const int64_t kc = std::min(kb, K - k0), kp = kc / 2;
      float scale = 1.0f;
      for (int64_t k1 = k0; k1 < k0 + kc; k1 += kGemmKc)
        scale = widen_panel(w, p0, nr, k1, std::min(kGemmKc, k0 + kc - k1), panel + (k1 - k0) / 2 * 32);
      for (int64_t t = 0; t < tiles; ++t)
        micro_bf16(g.apack + (t * kp_all + k0 / 2) * 8, kp, panel, g.y + t * 8 * g.ldy + p0, g.ldy,
                   static_cast<int>(std::min<int64_t>(8, g.m - t * 8)), nr, scale, k0 > 0);
    }
  }
}

// x rounded to BF16, nearest even (finite values), kept as floats.
inline __m512 round_bf16(__m512 x) {
  const __m512i b = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb));
  return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// Lightning-indexer scores for the keys [p0, p0 + 32) (clipped to the key count): each 8-head tile
// of a query meets the key panel in registers, and its ReLU'd dots are folded into the query's
// scores with the head weights, heads in order, so the [queries x heads x keys] dots never exist.
void index_panel(const IndexPanelArgs& a, int64_t p0) {
  const int64_t K = a.keys->cols, kp = K / 2, tiles = a.nq * a.heads / 8;
  const int nr = static_cast<int>(std::min<int64_t>(32, a.keys->rows - p0));
  const __mmask16 m0 = lanes(nr), m1 = lanes(std::max(0, nr - 16));
  alignas(64) uint32_t panel[kIndexMaxDim / 2 * 32];
  for (int64_t k0 = 0; k0 < K; k0 += kGemmKc) widen_panel(*a.keys, p0, nr, k0, std::min(kGemmKc, K - k0), panel + k0 / 2 * 32);
  for (int64_t t = 0; t < tiles; ++t) {
    __m512 c[8][2];
    tile_dot(a.qpack + t * kp * 8, kp, panel, c);
    const int64_t row = t * 8, h0 = row % a.heads;
    float* s = a.scores + row / a.heads * a.ld + p0;
    __m512 s0 = h0 ? _mm512_maskz_loadu_ps(m0, s) : _mm512_setzero_ps();
    __m512 s1 = h0 ? _mm512_maskz_loadu_ps(m1, s + 16) : _mm512_setzero_ps();
    for (int j = 0; j < 8; ++j) {
      const __m512 wj = _mm512_set1_ps(a.w[row + j]);
      if (a.bf16_steps) {
        s0 = _mm512_add_ps(s0, round_bf16(_mm512_mul_ps(wj, round_bf16(_mm512_max_ps(c[j][0], _mm512_setzero_ps())))));
        s1 = _mm512_add_ps(s1, round_bf16(_mm512_mul_ps(wj, round_bf16(_mm512_max_ps(c[j][1], _mm512_setzero_ps())))));
        continue;
      }
      s0 = _mm512_fmadd_ps(wj, _mm512_max_ps(c[j][0], _mm512_setzero_ps()), s0);
      s1 = _mm512_fmadd_ps(wj, _mm512_max_ps(c[j][1], _mm512_setzero_ps()), s1);
    }
    _mm512_mask_storeu_ps(s, m0, s0);
    _mm512_mask_storeu_ps(s + 16, m1, s1);
  }
}

// Indexer scores from 8-bit integers: an 8-row tile of query integers (signed bytes, broadcast four
// at a time) against a 32-key panel (the keys' integers + 128, unsigned bytes), by vpdpbusd; the
// +128 comes off per row, then the ReLU, the head weights and the key scales as in index_panel.
void index_panel_i8(const IndexInt8Args& a, int64_t panel) {
  const int64_t kq = a.k / 4, tiles = a.nq * a.heads / 8, p0 = panel * 32;
  const uint32_t* B = a.keys + panel * kq * 32;
  const int nr = static_cast<int>(std::min<int64_t>(32, a.n - p0));
  const __mmask16 m0 = lanes(nr), m1 = lanes(std::max(0, nr - 16));
  const __m512 sk0 = _mm512_maskz_loadu_ps(m0, a.key_scale + p0), sk1 = _mm512_maskz_loadu_ps(m1, a.key_scale + p0 + 16);
  for (int64_t t = 0; t < tiles; ++t) {
    const uint32_t* A = a.qpack + t * kq * 8;
    __m512i c[8][2];
    for (int i = 0; i < 8; ++i) c[i][0] = c[i][1] = _mm512_setzero_si512();
    for (int64_t k = 0; k < kq; ++k) {
      const __m512i b0 = _mm512_loadu_si512(B + k * 32), b1 = _mm512_loadu_si512(B + k * 32 + 16);
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) {
        const __m512i q = _mm512_set1_epi32(static_cast<int>(A[k * 8 + i]));
        c[i][0] = _mm512_dpbusd_epi32(c[i][0], b0, q);
        c[i][1] = _mm512_dpbusd_epi32(c[i][1], b1, q);
      }
    }
    const int64_t row = t * 8, h0 = row % a.heads;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (int i = 0; i < 8; ++i) {
      const __m512i corr = _mm512_set1_epi32(a.qcorr[row + i]), zero = _mm512_setzero_si512();
      const __m512 wi = _mm512_set1_ps(a.w[row + i]);
      const __m512 d0 = _mm512_cvtepi32_ps(_mm512_max_epi32(_mm512_sub_epi32(c[i][0], corr), zero));
      const __m512 d1 = _mm512_cvtepi32_ps(_mm512_max_epi32(_mm512_sub_epi32(c[i][1], corr), zero));
      if (a.bf16_steps) {  // the powers of two (w's and the keys') commute with the roundings
        s0 = _mm512_add_ps(s0, round_bf16(_mm512_mul_ps(wi, round_bf16(d0))));
        s1 = _mm512_add_ps(s1, round_bf16(_mm512_mul_ps(wi, round_bf16(d1))));
        continue;
      }
      s0 = _mm512_fmadd_ps(wi, d0, s0);
      s1 = _mm512_fmadd_ps(wi, d1, s1);
    }
    float* s = a.scores + row / a.heads * a.ld + p0;
    const __m512 old0 = h0 ? _mm512_maskz_loadu_ps(m0, s) : _mm512_setzero_ps();
    const __m512 old1 = h0 ? _mm512_maskz_loadu_ps(m1, s + 16) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(s, m0, _mm512_fmadd_ps(s0, sk0, old0));
    _mm512_mask_storeu_ps(s + 16, m1, _mm512_fmadd_ps(s1, sk1, old1));
  }
}

// ---- Attention: BF16 queries and probabilities against BF16 key/value rows ---------------------

// Lane i of the result: the sum of the 16 lanes of the i-th argument. (Zero-masked unpacks and an
// explicit extract: GCC 12 warns falsely inside the plain unpacks and the 512-to-256 cast.)
inline __m512 interleave_sum(__m512 a, __m512 b) {  // per 128 bits: a0+a2, b0+b2, a1+a3, b1+b3
  const __m512i x = _mm512_castps_si512(a), y = _mm512_castps_si512(b);
  return _mm512_add_ps(_mm512_castsi512_ps(_mm512_maskz_unpacklo_epi32(0xFFFF, x, y)),
                       _mm512_castsi512_ps(_mm512_maskz_unpackhi_epi32(0xFFFF, x, y)));
}
inline __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = interleave_sum(a, b), cd = interleave_sum(c, d);
  const __m512 x = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, 0x44), _mm512_shuffle_ps(ab, cd, 0xEE));  // a b c d per 128 bits
  const __m256 y = _mm256_add_ps(_mm512_extractf32x8_ps(x, 0), _mm512_extractf32x8_ps(x, 1));
  return _mm_add_ps(_mm256_castps256_ps128(y), _mm256_extractf128_ps(y, 1));
}

// MI query rows against four key rows (the last repeated where nj < 4), 32 dims per step.
template <int MI>
void scores_tile(const uint16_t* q, int64_t ldq, const uint16_t* const* r, int nj, int64_t d, float* s, int64_t lds) {
  __m512 acc[MI][4];
  for (int i = 0; i < MI; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < d; c += 32) {
    __m512bh k[4];
    for (int j = 0; j < 4; ++j) k[j] = (__m512bh)_mm512_loadu_si512(r[j] + c);
#pragma GCC unroll 4
    for (int i = 0; i < MI; ++i) {
      const __m512bh qv = (__m512bh)_mm512_loadu_si512(q + i * ldq + c);
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], qv, k[j]);
    }
  }
  const __mmask8 keep = static_cast<__mmask8>((1u << nj) - 1);
  for (int i = 0; i < MI; ++i) _mm_mask_storeu_ps(s + i * lds, keep, sum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
}

// Four key rows at a time, each met by every 4-row tile of the queries while it is in L1.
void attn_scores(const uint16_t* q, int64_t ldq, int64_t m, const uint16_t* const* rows, int64_t n, int64_t d, float* s, int64_t lds) {
  for (int64_t j0 = 0; j0 < n; j0 += 4) {
    const int nj = static_cast<int>(std::min<int64_t>(4, n - j0));
    const uint16_t* r[4];
    for (int j = 0; j < 4; ++j) r[j] = rows[j0 + std::min(j, nj - 1)];
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
      const uint16_t* qi = q + i0 * ldq;
      float* si = s + i0 * lds + j0;
      switch (std::min<int64_t>(4, m - i0)) {
        case 1: scores_tile<1>(qi, ldq, r, nj, d, si, lds); break;
        case 2: scores_tile<2>(qi, ldq, r, nj, d, si, lds); break;
        case 3: scores_tile<3>(qi, ldq, r, nj, d, si, lds); break;
        default: scores_tile<4>(qi, ldq, r, nj, d, si, lds); break;
      }
    }
  }
}

// Columns of a 32-column block as unpacklo / unpackhi of two rows lay out their (c, c) pairs: the
// first four of each 128-bit lane, then the last four.
const __m512i kLoColumns = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
const __m512i kHiColumns = _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
const __m512i kFirst16 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
const __m512i kLast16 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);

// MI output rows x 64 columns, accumulated over every pair of value rows. kSplit: src holds 2·np
// separate rows, pair p being rows 2p and 2p + 1, interleaved here (unpacklo / unpackhi), and the
// accumulators keep o in their column order from load to store. Else src holds np interleaved pairs.
template <int MI, bool kSplit>
void pv_tile(const uint32_t* p2, int64_t ldp, const uint16_t* const* src, int64_t np, int64_t c0, float* o, int64_t ldo) {
  __m512 acc[MI][4];
  for (int i = 0; i < MI; ++i)
    for (int h = 0; h < 2; ++h) {
      const float* oi = o + i * ldo + c0 + 32 * h;
      const __m512 a = _mm512_loadu_ps(oi), b = _mm512_loadu_ps(oi + 16);
      acc[i][2 * h] = kSplit ? _mm512_permutex2var_ps(a, kLoColumns, b) : a;
      acc[i][2 * h + 1] = kSplit ? _mm512_permutex2var_ps(a, kHiColumns, b) : b;
    }
  for (int64_t p = 0; p < np; ++p) {
    __m512bh vv[4];
    if constexpr (kSplit) {
      for (int h = 0; h < 2; ++h) {
        const __m512i ra = _mm512_loadu_si512(src[2 * p] + c0 + 32 * h), rb = _mm512_loadu_si512(src[2 * p + 1] + c0 + 32 * h);
        vv[2 * h] = (__m512bh)_mm512_unpacklo_epi16(ra, rb);
        vv[2 * h + 1] = (__m512bh)_mm512_unpackhi_epi16(ra, rb);
      }
    } else {
      for (int c = 0; c < 4; ++c) vv[c] = (__m512bh)_mm512_loadu_si512(src[p] + 2 * c0 + 32 * c);
    }
#pragma GCC unroll 4
    for (int i = 0; i < MI; ++i) {
      const __m512bh w = (__m512bh)_mm512_set1_epi32(static_cast<int>(p2[i * ldp + p]));
      for (int c = 0; c < 4; ++c) acc[i][c] = _mm512_dpbf16_ps(acc[i][c], w, vv[c]);
    }
  }
  for (int i = 0; i < MI; ++i)
    for (int h = 0; h < 2; ++h) {
      float* oi = o + i * ldo + c0 + 32 * h;
      const __m512 lo = acc[i][2 * h], hi = acc[i][2 * h + 1];
      _mm512_storeu_ps(oi, kSplit ? _mm512_permutex2var_ps(lo, kFirst16, hi) : lo);
      _mm512_storeu_ps(oi + 16, kSplit ? _mm512_permutex2var_ps(lo, kLast16, hi) : hi);
    }
}

template <bool kSplit>
void attn_pv(const uint32_t* p2, int64_t ldp, int64_t m, const uint16_t* const* src, int64_t np, int64_t d, float* o, int64_t ldo) {
  for (int64_t c0 = 0; c0 < d; c0 += 64)
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
      const uint32_t* pi = p2 + i0 * ldp;
      float* oi = o + i0 * ldo;
      switch (std::min<int64_t>(4, m - i0)) {
        case 1: pv_tile<1, kSplit>(pi, ldp, src, np, c0, oi, ldo); break;
        case 2: pv_tile<2, kSplit>(pi, ldp, src, np, c0, oi, ldo); break;
        case 3: pv_tile<3, kSplit>(pi, ldp, src, np, c0, oi, ldo); break;
        default: pv_tile<4, kSplit>(pi, ldp, src, np, c0, oi, ldo); break;
      }
    }
}

}  // namespace

void pack_bf16_pairs(const float* a, int64_t m, int64_t k, uint32_t* out) {
  const int64_t kp = k / 2, tiles = (m + 7) / 8, kv = k / 32 * 32;
  std::vector<uint32_t> row(kp);
  for (int64_t t = 0; t < tiles; ++t)
    for (int i = 0; i < 8; ++i) {
      const int64_t r = t * 8 + i;
      uint32_t* dst = out + t * kp * 8 + i;
      if (r >= m) {
        for (int64_t kk = 0; kk < kp; ++kk) dst[kk * 8] = 0u;
        continue;
      }
      // Rounded 32 at a time (to nearest even, as float_to_bf16, but float subnormals, far below
      // any activation, become zero), then spread 8 apart.
      const float* x = a + r * k;
      for (int64_t c = 0; c < kv; c += 32)
        _mm512_storeu_si512(row.data() + c / 2, pairs_of(_mm512_loadu_ps(x + c), _mm512_loadu_ps(x + c + 16)));
      for (int64_t c = kv; c < k; c += 2) row[c / 2] = bf16_pair(x[c], x[c + 1]);
      for (int64_t kk = 0; kk < kp; ++kk) dst[kk * 8] = row[kk];
    }
}

bool cpu_has_bf16dot() {
  __builtin_cpu_init();
  static const bool ok = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
  return ok;
}

Bf16WeightGemmFn gemm_bf16_weights_dot(int64_t k) { return cpu_has_bf16dot() && k % 2 == 0 ? gemm_bf16_weights : nullptr; }

IndexPanelFn index_panel_dot(int64_t heads, int64_t k) {
  return cpu_has_bf16dot() && heads % 8 == 0 && k % 2 == 0 && k <= kIndexMaxDim ? index_panel : nullptr;
}

bool cpu_has_vnni() {
  __builtin_cpu_init();
  static const bool ok = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
  return ok;
}

IndexInt8Fn index_panel_int8(int64_t heads, int64_t k) {
  return cpu_has_vnni() && heads % 8 == 0 && k % 4 == 0 && k <= kIndexMaxDim ? index_panel_i8 : nullptr;
}

const AttnBf16Kernels* attention_bf16_dot(int64_t d) {
  static constexpr AttnBf16Kernels kernels{attn_scores, attn_pv<false>, attn_pv<true>};
  return cpu_has_bf16dot() && d % 64 == 0 ? &kernels : nullptr;
}

GemvFn gemv_bf16dot(WeightLayout layout, int64_t k) {
  if (!cpu_has_bf16dot()) return nullptr;
  switch (layout) {
    case WeightLayout::kFp8Ue8m0:
    case WeightLayout::kFp8F32: return k % 128 == 0 ? kFp8Gemv : nullptr;
    case WeightLayout::kMxfp4: return k % 64 == 0 ? kMxfp4Gemv : nullptr;
    case WeightLayout::kBf16: return k % 64 == 0 ? kBf16Gemv : nullptr;
    default: return nullptr;
  }
}

}  // namespace v4b

#else
namespace v4b {
GemvFn gemv_bf16dot(WeightLayout, int64_t) { return nullptr; }
Bf16WeightGemmFn gemm_bf16_weights_dot(int64_t) { return nullptr; }
IndexPanelFn index_panel_dot(int64_t, int64_t) { return nullptr; }
const AttnBf16Kernels* attention_bf16_dot(int64_t) { return nullptr; }
IndexInt8Fn index_panel_int8(int64_t, int64_t) { return nullptr; }
void pack_bf16_pairs(const float*, int64_t, int64_t, uint32_t*) {}
}  // namespace v4b
#endif
