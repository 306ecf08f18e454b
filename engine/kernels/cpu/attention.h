// Blocked (flash-style) attention for the CPU forward passes: query rows meet blocks of key/value
// rows as two products on the calling thread (FP32, or BF16 operands with FP32 sums), folded
// into a running softmax, so memory stays bounded at any context and the models parallelise over
// queries and heads themselves. Counters are the caller's: the models count attention per token.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/scratch.h"
#include "engine/kernels/cpu/cpu_features.h"

namespace v4b {

// FP32 products of two activation matrices, run on the calling thread:
//   gemm_f32_nt: c[m][n] = a[m][k] · b[n][k]ᵀ     (b rows contiguous, k floats apart)
//   gemm_f32_nn: c[m][n] (+)= a[m][k] · b[k][n]   (b rows ldb apart)
void gemm_f32_nt(CpuIsa isa, const float* a, int64_t lda, const float* b, int64_t n, int64_t k, float* c, int64_t ldc, int64_t m);
void gemm_f32_nn(CpuIsa isa, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
                 int64_t k, bool accumulate);

// Rows that are both keys and values (shared K = V, as V4 caches them), held in BF16 in the two
// layouts OnlineAttention::add_bf16 reads: row-major for the scores, and rows 2p and 2p + 1
// interleaved for the values. Cached V4 rows are exact in BF16 (E4M3 times a power of two, or BF16).
class Bf16KvRows {
 public:
  // Room for n rows of d values (d a multiple of 64), each to be set before it is read, unless
  // zeroed: then a row read unset is zero.
  void resize(int64_t n, int64_t d, bool zeroed = false);
  void set_row(int64_t j, const float* x);  // rounded to nearest even
  void set_row_bits(int64_t j, const uint16_t* bits);  // BF16 values as they are
  int64_t size() const { return n_; }
  int64_t dim() const { return d_; }
  const uint16_t* row(int64_t j) const { return rows_.data() + j * d_; }
  const uint16_t* pair(int64_t p) const { return pairs_.data() + p * 2 * d_; }

 private:
  void fill_pair_half(int64_t j);

  int64_t n_ = 0, d_ = 0;
  Scratch<uint16_t> rows_, pairs_;
};

// Online-softmax state of m query rows with dv-float outputs. Blocks of rows may come in any
// order; finish() folds in an optional per-row sink logit and writes the normalised outputs.
class OnlineAttention {
 public:
  void reset(int64_t m, int64_t dv);

  // Folds in n rows: keys k[n][dk] (contiguous), values v (dv floats per row, ldv apart), scores
  // scale·(q·k). Row i of q sees block rows [lo[i], hi[i]) when lo / hi are given, else all.
  void add(CpuIsa isa, const float* q, int64_t ldq, int64_t dk, const float* k, const float* v, int64_t ldv, int64_t n, float scale,
           const int64_t* lo = nullptr, const int64_t* hi = nullptr);

  // The same with BF16 operands (KernelContext::bf16_activations): q [m][kv.dim()] BF16 rows ldq
  // apart against rows idx[0..n) of kv (any order; ascending runs share their pair loads), keys
  // and values alike, the probabilities rounded to BF16 before they meet the values; products
  // exact, sums FP32. AVX512-BF16 CPUs run it by vdpbf16ps, others by plain loops of the same arithmetic.
  void add_bf16(CpuIsa isa, const uint16_t* q, int64_t ldq, const Bf16KvRows& kv, const int32_t* idx, int64_t n, float scale,
                const int64_t* lo = nullptr, const int64_t* hi = nullptr);

  // Folds in the state of the same queries over other rows (split-K attention).
  void merge(const OnlineAttention& other);

  // out[i] (ldo apart) = Σ_j p_ij v_j with p normalised over the rows seen plus exp(sink[i]) when
  // sink is given; a row that saw nothing gets zeros.
  void finish(const float* sink, float* out, int64_t ldo) const;

 private:
  // Turns the m x n scores s into the block's weights exp(scale * s - running max), zero outside
  // [lo, hi), updating the running max and sum and rescaling the outputs so far.
  void fold_scores(float* s, int64_t n, float scale, const int64_t* lo, const int64_t* hi);

  int64_t m_ = 0, dv_ = 0;
  std::vector<float> o_, max_, sum_;
};

}  // namespace v4b
