// Blocked (flash-style) attention for the CPU forward passes: query rows meet blocks of key/value
// rows as two FP32 products on the calling thread (matmul.h gemm_f32_nt / gemm_f32_nn), folded
// into a running softmax, so memory stays bounded at any context and the models parallelise over
// queries and heads themselves. Counters are the caller's: the models count attention per token.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/kernels/cpu/cpu_features.h"

namespace v4b {

// FP32 products of two activation matrices, run on the calling thread:
//   gemm_f32_nt: c[m][n] = a[m][k] · b[n][k]ᵀ     (b rows contiguous, k floats apart)
//   gemm_f32_nn: c[m][n] (+)= a[m][k] · b[k][n]   (b rows ldb apart)
void gemm_f32_nt(CpuIsa isa, const float* a, int64_t lda, const float* b, int64_t n, int64_t k, float* c, int64_t ldc, int64_t m);
void gemm_f32_nn(CpuIsa isa, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
                 int64_t k, bool accumulate);

// Online-softmax state of m query rows with dv-float outputs. Blocks of rows may come in any
// order; finish() folds in an optional per-row sink logit and writes the normalised outputs.
class OnlineAttention {
 public:
  void reset(int64_t m, int64_t dv);

  // Folds in n rows: keys k[n][dk] (contiguous), values v (dv floats per row, ldv apart), scores
  // scale·(q·k). Row i of q sees block rows [lo[i], hi[i]) when lo / hi are given, else all.
  void add(CpuIsa isa, const float* q, int64_t ldq, int64_t dk, const float* k, const float* v, int64_t ldv, int64_t n, float scale,
           const int64_t* lo = nullptr, const int64_t* hi = nullptr);

  // Folds in the state of the same queries over other rows (split-K attention).
  void merge(const OnlineAttention& other);

  // out[i] (ldo apart) = Σ_j p_ij v_j with p normalised over the rows seen plus exp(sink[i]) when
  // sink is given; a row that saw nothing gets zeros.
  void finish(const float* sink, float* out, int64_t ldo) const;

 private:
  int64_t m_ = 0, dv_ = 0;
  std::vector<float> o_, max_, sum_;
};

}  // namespace v4b
