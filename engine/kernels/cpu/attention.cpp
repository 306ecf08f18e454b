#include "engine/kernels/cpu/attention.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <limits>

#include "engine/kernels/cpu/exp_approx.h"
#include "engine/kernels/cpu/matmul_kernels.h"

namespace v4b {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

const MatmulKernels& kernels_for(CpuIsa isa) {
  switch (resolve_cpu_isa(isa)) {
    case CpuIsa::kAvx512: return matmul_kernels_avx512();
    case CpuIsa::kAvx2: return matmul_kernels_avx2();
    default: return matmul_kernels_generic();
  }
}

}  // namespace

void gemm_f32_nt(CpuIsa isa, const float* a, int64_t lda, const float* b, int64_t n, int64_t k, float* c, int64_t ldc, int64_t m) {
  if (m > 0 && n > 0) kernels_for(isa).gemm_nt(a, lda, b, n, k, c, ldc, m);
}

void gemm_f32_nn(CpuIsa isa, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t n,
                 int64_t k, bool accumulate) {
  if (m > 0 && n > 0 && k > 0) kernels_for(isa).gemm_nn(a, lda, b, ldb, c, ldc, m, n, k, accumulate);
}

void OnlineAttention::reset(int64_t m, int64_t dv) {
  m_ = m;
  dv_ = dv;
  o_.assign(m * dv, 0.0f);
  max_.assign(m, kNegInf);
  sum_.assign(m, 0.0f);
}

void OnlineAttention::add(CpuIsa isa, const float* q, int64_t ldq, int64_t dk, const float* k, const float* v, int64_t ldv, int64_t n,
                          float scale, const int64_t* lo, const int64_t* hi) {
  if (n <= 0) return;
  thread_local std::vector<float> scores;  // scratch of the calling thread
  scores.resize(m_ * n);
  gemm_f32_nt(isa, q, ldq, k, n, dk, scores.data(), n, m_);
  for (int64_t i = 0; i < m_; ++i) {
    float* s = scores.data() + i * n;
    const int64_t j0 = lo ? std::max<int64_t>(0, lo[i]) : 0, j1 = hi ? std::min(n, hi[i]) : n;
    float mx = max_[i];
    for (int64_t j = j0; j < j1; ++j) mx = std::max(mx, s[j] *= scale);
    if (mx == kNegInf) {  // nothing visible yet: contributes nothing
      std::fill(s, s + n, 0.0f);
      continue;
    }
    const float rescale = max_[i] == kNegInf ? 0.0f : exp_nonpositive(max_[i] - mx);
    std::fill(s, s + j0, 0.0f);
    std::fill(s + std::max(j0, j1), s + n, 0.0f);
    for (int64_t j = j0; j < j1; ++j) s[j] = exp_nonpositive(s[j] - mx);
    float sum = 0;
    for (int64_t j = j0; j < j1; ++j) sum += s[j];
    sum_[i] = sum_[i] * rescale + sum;
    max_[i] = mx;
    if (rescale != 1.0f)
      for (float* o = o_.data() + i * dv_; o < o_.data() + (i + 1) * dv_; ++o) *o *= rescale;
  }
  gemm_f32_nn(isa, scores.data(), n, v, ldv, o_.data(), dv_, m_, dv_, n, true);
}

void OnlineAttention::merge(const OnlineAttention& other) {
  for (int64_t i = 0; i < m_; ++i) {
    if (other.max_[i] == kNegInf) continue;
    const float mx = std::max(max_[i], other.max_[i]);
    const float a = max_[i] == kNegInf ? 0.0f : exp_nonpositive(max_[i] - mx), b = exp_nonpositive(other.max_[i] - mx);
    sum_[i] = sum_[i] * a + other.sum_[i] * b;
    max_[i] = mx;
    float* o = o_.data() + i * dv_;
    const float* p = other.o_.data() + i * dv_;
    for (int64_t c = 0; c < dv_; ++c) o[c] = o[c] * a + p[c] * b;
  }
}

void OnlineAttention::finish(const float* sink, float* out, int64_t ldo) const {
  for (int64_t i = 0; i < m_; ++i) {
    float* y = out + i * ldo;
    const float mx = sink ? std::max(max_[i], sink[i]) : max_[i];
    if (mx == kNegInf) {
      std::fill(y, y + dv_, 0.0f);
      continue;
    }
    const float a = max_[i] == kNegInf ? 0.0f : std::exp(max_[i] - mx);
    const float den = sum_[i] * a + (sink ? std::exp(sink[i] - mx) : 0.0f);
    const float f = den > 0 ? a / den : 0.0f;
    for (int64_t c = 0; c < dv_; ++c) y[c] = o_[i * dv_ + c] * f;
  }
}

}  // namespace v4b
