// Internal interface between the matmul dispatcher (matmul.cpp) and the per-ISA kernel builds.
#pragma once

#include <cstdint>

#include "engine/kernels/cpu/matmul.h"

namespace v4b {

// GEMM k-block: one FP8 scale block, a whole number of MXFP4 blocks; a [kc][2W] panel fits L1.
inline constexpr int64_t kGemmKc = 128;

struct GemvArgs {
  const WeightMatrix* w;
  const float* x;      // activations; fp8: pre-scaled by 2^prescale; mxfp4: even columns
  const float* x_odd;  // mxfp4: odd columns
  int64_t ldx;
  float* y;
  int64_t ldy;
  int m;  // 1..4 activation rows
  int prescale;
  const uint16_t* x_bf16 = nullptr;  // for gemv_bf16dot kernels: x rounded to BF16 (bf16dot_activations)
};

struct GemmArgs {
  const WeightMatrix* w;
  const float* x;
  int64_t ldx;
  float* y;
  int64_t ldy;
  int64_t m;
  const float* apack = nullptr;  // x already packed by pack_a (shared by the threads), or null
};

struct MatmulKernels {
  void (*gemv)(const GemvArgs&, int64_t n0, int64_t n1);  // output rows [n0, n1)
  void (*gemm)(const GemmArgs&, int64_t n0, int64_t n1);  // output columns [n0, n1)
  int gemm_nr;                                            // panel width; chunk GEMM work in multiples of it
  int gemm_mr;                                            // rows per tile of the packed activations
  void (*pack_a)(const GemmArgs&, float* apack);          // [ceil(m / gemm_mr)][k][gemm_mr], zero-padded
  void (*gemm_nt)(const float* a, int64_t lda, const float* b, int64_t n, int64_t k, float* c, int64_t ldc, int64_t m);
  void (*gemm_nn)(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n, int64_t k,
                  bool accumulate);
};

const MatmulKernels& matmul_kernels_generic();
const MatmulKernels& matmul_kernels_avx2();
const MatmulKernels& matmul_kernels_avx512();

// GEMV on AVX512-BF16 CPUs for FP8, MXFP4 and BF16 weights (k a multiple of 128, 64, 64): weights
// widened to BF16 (exact) and dotted with BF16 activations by vdpbf16ps, twice the elements per
// instruction of the FP32 path. x_bf16 holds the activations as bf16dot_activations lays them out.
// Null where the build, the CPU or the shape does not allow it.
using GemvFn = void (*)(const GemvArgs&, int64_t n0, int64_t n1);
GemvFn gemv_bf16dot(WeightLayout layout, int64_t k);
// x [m][k] (FP8: pre-scaled) rounded to BF16 in the order gemv_bf16dot's kernel for `layout` reads:
// natural, except MXFP4, where each 64 columns go as (4j, 4j+2) pairs, then (4j+1, 4j+3) pairs.
void bf16dot_activations(WeightLayout layout, const float* x, int64_t m, int64_t k, uint16_t* out);

// x [m][k] rounded to BF16 and packed for gemm_bf16_weights_dot's kernel: [ceil(m/8)][k/2][8] pairs.
void pack_bf16_pairs(const float* a, int64_t m, int64_t k, uint32_t* out);

// GEMM on AVX512-BF16 CPUs (k even): y[m][n] = x[m][k] · Wᵀ with the weights widened exactly to
// BF16 (FP8 float block scales applied to the block sums; FP32 weights must hold values exact in
// BF16, as for matmul_bf16_exact) and x packed by pack_bf16_pairs. Output columns [n0, n1), n0 a
// multiple of 32. Null where the build, the CPU or the shape does not allow it.
struct Bf16WeightGemmArgs {
  const WeightMatrix* w;
  const uint32_t* apack;
  int64_t m;
  float* y;
  int64_t ldy;
};
using Bf16WeightGemmFn = void (*)(const Bf16WeightGemmArgs&, int64_t n0, int64_t n1);
Bf16WeightGemmFn gemm_bf16_weights_dot(int64_t k);

// Lightning-indexer scores on AVX512-BF16 CPUs, one 32-key panel per call (see index_scores_bf16):
// scores[i * ld + r] = sum over h of w[i * heads + h] * max(0, q[i][h] . key r), heads in order,
// q packed by pack_bf16_pairs (nq * heads rows), keys FP32 exact in BF16. Null where the build,
// the CPU or the shape (heads a multiple of 8, k even and at most kIndexMaxDim) does not allow it.
inline constexpr int64_t kIndexMaxDim = 256;
struct IndexPanelArgs {
  const uint32_t* qpack;
  int64_t nq, heads;
  const float* w;
  const WeightMatrix* keys;  // kF32, rows = keys
  float* scores;
  int64_t ld;
  bool bf16_steps = false;  // official numerics: each head's dot and weighted term rounded to BF16
};
using IndexPanelFn = void (*)(const IndexPanelArgs&, int64_t p0);
IndexPanelFn index_panel_dot(int64_t heads, int64_t k);

// Lightning-indexer scores from 8-bit integers (index_scores_int8), one 32-key panel per call:
// scores[i * ld + r] = key_scale[r] x sum over h of w[i * heads + h] x max(0, q[i][h] . key r),
// with the dots taken exactly in int32 from the integers, heads in order.
struct IndexInt8Args {
  const uint32_t* qpack;   // [nq * heads / 8][k / 4][8]: four signed bytes per dword
  const int32_t* qcorr;    // per query row: 128 x the sum of its integers (undoes the keys' +128)
  const float* w;          // per query row: its head weight times its power of two
  const uint32_t* keys;    // IndexKeysInt8 panels
  const float* key_scale;  // per key: its power of two
  int64_t nq, heads, k, n;
  float* scores;
  int64_t ld;
  bool bf16_steps = false;  // as IndexPanelArgs
};
using IndexInt8Fn = void (*)(const IndexInt8Args&, int64_t panel);
// Null where the build, the CPU (AVX512-VNNI) or the shape (heads a multiple of 8) does not allow it.
IndexInt8Fn index_panel_int8(int64_t heads, int64_t k);

// Attention with BF16 operands on AVX512-BF16 CPUs (attention.h, OnlineAttention::add_bf16):
//   scores: s[i * lds + j] = q_i . rows[j] over d BF16 values, for i < m (q rows ldq apart), j < n;
//   pv:     o[i * ldo + c] += sum over p of p2[i * ldp + p] . pairs[p] at column c, for i < m, c < d,
//           where pairs[p] holds two rows interleaved (element c of each at 2c and 2c + 1) and the
//           dword p2[.] their two BF16 weights (low half: the first row);
//   pv_rows: the same with pair p made of rows[2p] and rows[2p + 1], two separate rows (scattered
//           picks, whose stored pairs would be half unused).
struct AttnBf16Kernels {
  void (*scores)(const uint16_t* q, int64_t ldq, int64_t m, const uint16_t* const* rows, int64_t n, int64_t d, float* s, int64_t lds);
  void (*pv)(const uint32_t* p2, int64_t ldp, int64_t m, const uint16_t* const* pairs, int64_t np, int64_t d, float* o, int64_t ldo);
  void (*pv_rows)(const uint32_t* p2, int64_t ldp, int64_t m, const uint16_t* const* rows, int64_t np, int64_t d, float* o, int64_t ldo);
};
// Null where the build, the CPU or d (a multiple of 64) does not allow it.
const AttnBf16Kernels* attention_bf16_dot(int64_t d);

}  // namespace v4b
