// The matmul kernels, written once over a small vector-ISA interface and compiled once per ISA
// (matmul_generic.cpp, matmul_avx2.cpp, matmul_avx512.cpp with their own -m flags). Include only
// from those files, inside a namespace unique to the ISA.
//
// An ISA type provides:
//   V, kW (lanes), kMr (GEMM micro-tile rows); zero, set1, load, store, fma, add, hsum;
//   bf16(p):            kW BF16 values as floats
//   fp8_raw(p):         kW E4M3 values with sign, exponent and mantissa moved into float position,
//                       i.e. the exact value times 2^-120 (E4M3 subnormals become float subnormals)
//   fp4(p, even, odd):  kW packed bytes -> the kW even (low nibble) and kW odd (high nibble) elements
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/core/dtypes.h"
#include "engine/kernels/cpu/matmul_kernels.h"

namespace v4b {

// Raw E4M3 floats are the true value times 2^-120; activations are pre-scaled by 2^kFp8Prescale so
// products stay clear of the float subnormal range, and block sums are scaled back.
inline constexpr int kFp8RawShift = 120;

template <class I>
struct MatmulImpl {
  using V = typename I::V;
  static constexpr int kW = I::kW;

  static float fp8_block_scale(const WeightMatrix& w, int64_t n, int64_t kb) {
    const int64_t kbs = (w.cols + 127) / 128;
    const int64_t i = (n / 128) * kbs + kb;
    return w.layout == WeightLayout::kFp8Ue8m0 ? ue8m0_to_float(static_cast<const uint8_t*>(w.scales)[i])
                                               : static_cast<const float*>(w.scales)[i];
  }

  // ---- GEMV: each weight row is streamed once for up to four activation rows ----------------

  // y[r][n] for r < R, rows n in [n0, n1). x rows have stride ldx.
  template <int R>
  static void gemv_dense(const WeightMatrix& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n0, int64_t n1) {
    const int64_t K = w.cols, kv = K / (2 * kW) * (2 * kW);
    for (int64_t n = n0; n < n1; ++n) {
      V acc[R][2];
      for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = I::zero();
      const bool bf16 = w.layout == WeightLayout::kBf16;
      const auto* wb = static_cast<const uint16_t*>(w.data) + n * K;
      const auto* wf = static_cast<const float*>(w.data) + n * K;
      for (int64_t k = 0; k < kv; k += 2 * kW) {
        const V w0 = bf16 ? I::bf16(wb + k) : I::load(wf + k);
        const V w1 = bf16 ? I::bf16(wb + k + kW) : I::load(wf + k + kW);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          acc[r][0] = I::fma(w0, I::load(x + r * ldx + k), acc[r][0]);
          acc[r][1] = I::fma(w1, I::load(x + r * ldx + k + kW), acc[r][1]);
        }
      }
      for (int r = 0; r < R; ++r) {
        float s = I::hsum(I::add(acc[r][0], acc[r][1]));
        for (int64_t k = kv; k < K; ++k) s += (bf16 ? bf16_to_float(Bf16{wb[k]}) : wf[k]) * x[r * ldx + k];
        y[r * ldy + n] = s;
      }
    }
  }

  // x is pre-scaled by 2^prescale.
  template <int R>
  static void gemv_fp8(const WeightMatrix& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n0, int64_t n1,
                       int prescale) {
    const int64_t K = w.cols, nkb = (K + 127) / 128, kfull = K / 128 * 128;
    const float unscale = std::ldexp(1.0f, kFp8RawShift - prescale), inv_prescale = std::ldexp(1.0f, -prescale);
    const bool ue8m0 = w.layout == WeightLayout::kFp8Ue8m0;
    for (int64_t n = n0; n < n1; ++n) {
      const uint8_t* wr = static_cast<const uint8_t*>(w.data) + n * K;
      const uint8_t* s8 = static_cast<const uint8_t*>(w.scales) + (n / 128) * nkb;
      const float* s32 = static_cast<const float*>(w.scales) + (n / 128) * nkb;
      V acc[R];
      for (int r = 0; r < R; ++r) acc[r] = I::zero();
      // Whole 128-column blocks: one scale each, folded in once per block.
      for (int64_t k0 = 0; k0 < kfull; k0 += 128) {
        V p[R][2];
        for (int r = 0; r < R; ++r) p[r][0] = p[r][1] = I::zero();
#pragma GCC unroll 8
        for (int64_t k = k0; k < k0 + 128; k += 2 * kW) {
          const V w0 = I::fp8_raw(wr + k), w1 = I::fp8_raw(wr + k + kW);
#pragma GCC unroll 4
          for (int r = 0; r < R; ++r) {
            p[r][0] = I::fma(w0, I::load(x + r * ldx + k), p[r][0]);
            p[r][1] = I::fma(w1, I::load(x + r * ldx + k + kW), p[r][1]);
          }
        }
        const float sc = (ue8m0 ? ue8m0_to_float(s8[k0 / 128]) : s32[k0 / 128]) * unscale;
        for (int r = 0; r < R; ++r) acc[r] = I::fma(I::add(p[r][0], p[r][1]), I::set1(sc), acc[r]);
      }
      for (int r = 0; r < R; ++r) {
        float tail = 0;  // a last partial block, in scalar code
        if (kfull < K) {
          const float sc = ue8m0 ? ue8m0_to_float(s8[nkb - 1]) : s32[nkb - 1];
          for (int64_t k = kfull; k < K; ++k) tail += e4m3_to_float(wr[k]) * x[r * ldx + k];
          tail *= sc * inv_prescale;
        }
        y[r * ldy + n] = I::hsum(acc[r]) + tail;
      }
    }
  }

  // xe / xo hold the even / odd columns of each activation row (K/2 each, row stride ldx).
  // Two 32-column blocks per step, each with its own accumulator, so nothing spills to memory.
  template <int R>
  static void gemv_mxfp4(const WeightMatrix& w, const float* xe, const float* xo, int64_t ldx, float* y, int64_t ldy,
                         int64_t n0, int64_t n1) {
    const int64_t K = w.cols, nb = K / 32;
    for (int64_t n = n0; n < n1; ++n) {
      const uint8_t* wr = static_cast<const uint8_t*>(w.data) + n * (K / 2);
      const uint8_t* sr = static_cast<const uint8_t*>(w.scales) + n * nb;
      V acc0[R], acc1[R];
      for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = I::zero();
      auto block = [&](int64_t b, V* acc) {
        V p[R];
        for (int r = 0; r < R; ++r) p[r] = I::zero();
#pragma GCC unroll 16
        for (int j = 0; j < 16; j += kW) {
          V even, odd;
          I::fp4(wr + b * 16 + j, even, odd);
#pragma GCC unroll 4
          for (int r = 0; r < R; ++r) {
            p[r] = I::fma(even, I::load(xe + r * ldx + b * 16 + j), p[r]);
            p[r] = I::fma(odd, I::load(xo + r * ldx + b * 16 + j), p[r]);
          }
        }
        const V s = I::set1(ue8m0_to_float(sr[b]));
        for (int r = 0; r < R; ++r) acc[r] = I::fma(p[r], s, acc[r]);
      };
      int64_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        block(b, acc0);
        block(b + 1, acc1);
      }
      if (b < nb) block(b, acc0);
      for (int r = 0; r < R; ++r) y[r * ldy + n] = I::hsum(I::add(acc0[r], acc1[r]));
    }
  }

  template <int R>
  static void gemv_rows(const GemvArgs& a, int64_t n0, int64_t n1) {
    switch (a.w->layout) {
      case WeightLayout::kF32:
      case WeightLayout::kBf16: return gemv_dense<R>(*a.w, a.x, a.ldx, a.y, a.ldy, n0, n1);
      case WeightLayout::kFp8Ue8m0:
      case WeightLayout::kFp8F32: return gemv_fp8<R>(*a.w, a.x, a.ldx, a.y, a.ldy, n0, n1, a.prescale);
      case WeightLayout::kMxfp4: return gemv_mxfp4<R>(*a.w, a.x, a.x_odd, a.ldx, a.y, a.ldy, n0, n1);
    }
  }

  static void gemv(const GemvArgs& a, int64_t n0, int64_t n1) {
    switch (a.m) {
      case 1: return gemv_rows<1>(a, n0, n1);
      case 2: return gemv_rows<2>(a, n0, n1);
      case 3: return gemv_rows<3>(a, n0, n1);
      default: return gemv_rows<4>(a, n0, n1);
    }
  }

  // ---- GEMM: dequantised weight panels [kc][kNr] times a kMr-row register tile -------------

  static constexpr int kNr = 2 * kW;
  static constexpr int kMr = I::kMr;

  // Dequantises w[n][k0, k0 + len) into out (floats, true values).
  static void decode_row(const WeightMatrix& w, int64_t n, int64_t k0, int64_t len, float* out) {
    const int64_t K = w.cols;
    switch (w.layout) {
      case WeightLayout::kF32: std::memcpy(out, static_cast<const float*>(w.data) + n * K + k0, len * sizeof(float)); return;
      case WeightLayout::kBf16: {
        const uint16_t* p = static_cast<const uint16_t*>(w.data) + n * K + k0;
        int64_t k = 0;
        for (; k + kW <= len; k += kW) I::store(out + k, I::bf16(p + k));
        for (; k < len; ++k) out[k] = bf16_to_float(Bf16{p[k]});
        return;
      }
      case WeightLayout::kFp8Ue8m0:
      case WeightLayout::kFp8F32: {
        // k0 is a multiple of 128 and len <= 128: one scale block.
        const uint8_t* p = static_cast<const uint8_t*>(w.data) + n * K + k0;
        const float s = fp8_block_scale(w, n, k0 / 128);
        const V sv = I::set1(s * std::ldexp(1.0f, kFp8RawShift));
        int64_t k = 0;
        for (; k + kW <= len; k += kW) I::store(out + k, I::fma(I::fp8_raw(p + k), sv, I::zero()));
        for (; k < len; ++k) out[k] = e4m3_to_float(p[k]) * s;
        return;
      }
      case WeightLayout::kMxfp4: {
        // Vector decode of each 32-column block into its even and odd halves, then interleaved.
        const uint8_t* p = static_cast<const uint8_t*>(w.data) + n * (K / 2) + k0 / 2;
        const uint8_t* sc = static_cast<const uint8_t*>(w.scales) + n * (K / 32) + k0 / 32;
        alignas(64) float even[16], odd[16];
        for (int64_t b = 0; b < len / 32; ++b) {
          const V s = I::set1(ue8m0_to_float(sc[b]));
          for (int j = 0; j < 16; j += kW) {
            V e, o;
            I::fp4(p + b * 16 + j, e, o);
            I::store(even + j, I::fma(e, s, I::zero()));
            I::store(odd + j, I::fma(o, s, I::zero()));
          }
          for (int i = 0; i < 16; ++i) {
            out[b * 32 + 2 * i] = even[i];
            out[b * 32 + 2 * i + 1] = odd[i];
          }
        }
        return;
      }
    }
  }

  // C[0..mr)[0..nr) (+)= Apack[kc][MR] · B[kc][kNr]; rows of Apack past mr are zero padding.
  // B rows are ldb apart (kNr for a packed panel). Kept out of line: inlined into a larger loop nest,
  // GCC spilled the accumulators to the stack inside the k loop (twice the time).
  template <int MR>
  [[gnu::noinline]] static void micro(const float* A, int64_t kc, const float* B, int64_t ldb, float* C, int64_t ldc, int mr, int nr,
                    bool accumulate) {
    V c[MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = I::zero();
    for (int64_t k = 0; k < kc; ++k) {
      const V b0 = I::load(B + k * ldb), b1 = I::load(B + k * ldb + kW);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const V a = I::set1(A[k * MR + i]);
        c[i][0] = I::fma(a, b0, c[i][0]);
        c[i][1] = I::fma(a, b1, c[i][1]);
      }
    }
    if (nr == kNr) {
      for (int i = 0; i < mr; ++i) {
        float* row = C + i * ldc;
        if (accumulate) {
          c[i][0] = I::add(c[i][0], I::load(row));
          c[i][1] = I::add(c[i][1], I::load(row + kW));
        }
        I::store(row, c[i][0]);
        I::store(row + kW, c[i][1]);
      }
    } else {
      alignas(64) float tmp[kNr];
      for (int i = 0; i < mr; ++i) {
        I::store(tmp, c[i][0]);
        I::store(tmp + kW, c[i][1]);
        for (int j = 0; j < nr; ++j) C[i * ldc + j] = (accumulate ? C[i * ldc + j] : 0.0f) + tmp[j];
      }
    }
  }

  // Output columns [n0, n1) for all M rows. The activations are packed as [tile][K][kMr] (so the
  // broadcasts walk memory in order; once per matmul when the caller packed them). Blocks of
  // kGemmTiles tiles keep their output block in L2 while each dequantised weight panel [kc][kNr]
  // (in L1) meets every tile of the block, one k-block at a time.
  static void gemm(const GemmArgs& a, int64_t n0, int64_t n1) { gemm_tiles<kMr>(a, n0, n1); }

  static void pack_a(const GemmArgs& a, float* apack) {
    const int64_t K = a.w->cols, M = a.m, tiles = (M + kMr - 1) / kMr;
    for (int64_t t = 0; t < tiles; ++t)
      for (int i = 0; i < kMr; ++i) {
        const int64_t m = t * kMr + i;
        float* dst = apack + t * K * kMr + i;
        if (m < M)
          for (int64_t k = 0; k < K; ++k) dst[k * kMr] = a.x[m * a.ldx + k];
        else
          for (int64_t k = 0; k < K; ++k) dst[k * kMr] = 0.0f;
      }
  }

  template <int MR>
  static void gemm_tiles(const GemmArgs& a, int64_t n0, int64_t n1) {
    static_assert(MR == kMr);
    constexpr int64_t kGemmTiles = 256 / MR;
    const WeightMatrix& w = *a.w;
    const int64_t K = w.cols, M = a.m, tiles = (M + MR - 1) / MR;
    std::vector<float> own;
    const float* apack = a.apack;
    if (!apack) {
      own.resize(tiles * K * MR);
      pack_a(a, own.data());
      apack = own.data();
    }
    alignas(64) float panel[kGemmKc * kNr];
    alignas(64) float row[kGemmKc];
    for (int64_t t0 = 0; t0 < tiles; t0 += kGemmTiles) {
      const int64_t t1 = std::min(tiles, t0 + kGemmTiles);
      for (int64_t k0 = 0; k0 < K; k0 += kGemmKc) {
        const int64_t kc = std::min(kGemmKc, K - k0);
        for (int64_t p0 = n0; p0 < n1; p0 += kNr) {
          const int nr = static_cast<int>(std::min<int64_t>(kNr, n1 - p0));
          for (int j = 0; j < kNr; ++j) {
            if (j < nr) decode_row(w, p0 + j, k0, kc, row);
            for (int64_t k = 0; k < kc; ++k) panel[k * kNr + j] = j < nr ? row[k] : 0.0f;
          }
          for (int64_t t = t0; t < t1; ++t) {
            const int mr = static_cast<int>(std::min<int64_t>(MR, M - t * MR));
            micro<MR>(apack + (t * K + k0) * MR, kc, panel, kNr, a.y + t * MR * a.ldy + p0, a.ldy, mr, nr, k0 > 0);
          }
        }
      }
    }
  }

  // ---- FP32 products of two activation matrices, on the calling thread (attention) ----------

  // c[M][N] = a[M][K] · b[N][K]ᵀ, b rows contiguous: the GEMV kernel (b streamed once per four rows
  // of a) for a few rows, the packed GEMM beyond.
  static void gemm_nt(const float* a, int64_t lda, const float* b, int64_t N, int64_t K, float* c, int64_t ldc, int64_t M) {
    const WeightMatrix w{WeightLayout::kF32, N, K, b, nullptr};
    if (M >= 9) return gemm_tiles<kMr>(GemmArgs{&w, a, lda, c, ldc, M}, 0, N);
    if (M <= 2) return M == 1 ? gemv_dense<1>(w, a, lda, c, ldc, 0, N) : gemv_dense<2>(w, a, lda, c, ldc, 0, N);
    switch (M) {
      case 3: return dot_rows<3>(a, lda, b, N, K, c, ldc);
      case 4: return dot_rows<4>(a, lda, b, N, K, c, ldc);
      case 5: return dot_rows<5>(a, lda, b, N, K, c, ldc);
      case 6: return dot_rows<6>(a, lda, b, N, K, c, ldc);
      case 7: return dot_rows<7>(a, lda, b, N, K, c, ldc);
      default: return dot_rows<8>(a, lda, b, N, K, c, ldc);
    }
  }

  // c[r][n] = a[r] · b[n] for R rows of a against b's rows two at a time, the 2R sums in registers:
  // each row of b is read once for all R rows of a, and each load of a feeds two multiply-adds
  // (4-row GEMV passes left the attention scores load-bound at half the FMA rate).
  template <int R>
  static void dot_rows(const float* a, int64_t lda, const float* b, int64_t N, int64_t K, float* c, int64_t ldc) {
    const int64_t kv = K / kW * kW;
    for (int64_t n = 0; n < N; n += 2) {
      const int nb = n + 1 < N ? 2 : 1;
      const float* b0 = b + n * K;
      const float* b1 = b + (n + nb - 1) * K;  // an odd last row is computed twice, stored once
      V acc[R][2];
      for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = I::zero();
      for (int64_t k = 0; k < kv; k += kW) {
        const V w0 = I::load(b0 + k), w1 = I::load(b1 + k);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const V x = I::load(a + r * lda + k);
          acc[r][0] = I::fma(w0, x, acc[r][0]);
          acc[r][1] = I::fma(w1, x, acc[r][1]);
        }
      }
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < nb; ++j) {
          const float* bj = j ? b1 : b0;
          float s = I::hsum(acc[r][j]);
          for (int64_t k = kv; k < K; ++k) s += bj[k] * a[r * lda + k];
          c[r * ldc + n + j] = s;
        }
    }
  }

  // c[M][N] (+)= a[M][K] · b[K][N] with b rows ldb apart, read in place (whole kNr-column panels;
  // the last N % kNr columns in scalar code). a is packed one kMr-row tile and k-block at a time.
  static void gemm_nn(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t M, int64_t N,
                      int64_t K, bool accumulate) {
    constexpr int64_t kKc = 256;
    alignas(64) float apack[kKc * kMr];
    const int64_t nfull = N / kNr * kNr;
    for (int64_t k0 = 0; k0 < K; k0 += kKc) {
      const int64_t kc = std::min(kKc, K - k0);
      const bool acc = accumulate || k0 > 0;
      for (int64_t m0 = 0; m0 < M; m0 += kMr) {
        const int mr = static_cast<int>(std::min<int64_t>(kMr, M - m0));
        for (int64_t k = 0; k < kc; ++k)
          for (int i = 0; i < kMr; ++i) apack[k * kMr + i] = i < mr ? a[(m0 + i) * lda + k0 + k] : 0.0f;
        for (int64_t p0 = 0; p0 < nfull; p0 += kNr)
          micro<kMr>(apack, kc, b + k0 * ldb + p0, ldb, c + m0 * ldc + p0, ldc, mr, kNr, acc);
        for (int i = 0; i < mr; ++i)
          for (int64_t n = nfull; n < N; ++n) {
            float s = acc ? c[(m0 + i) * ldc + n] : 0.0f;
            for (int64_t k = 0; k < kc; ++k) s += apack[k * kMr + i] * b[(k0 + k) * ldb + n];
            c[(m0 + i) * ldc + n] = s;
          }
      }
    }
  }
};

}  // namespace v4b
