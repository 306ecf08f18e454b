#include "engine/kernels/cpu/attention.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/core/dtypes.h"
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

void Bf16KvRows::resize(int64_t n, int64_t d, bool zeroed) {
  n_ = n;
  d_ = d;
  rows_.resize(n * d);
  pairs_.resize((n + 1) / 2 * 2 * d);
  if (zeroed) {
    std::fill(rows_.begin(), rows_.end(), uint16_t{0});
    std::fill(pairs_.begin(), pairs_.end(), uint16_t{0});
  } else if (n % 2) {  // the last pair's second half is no row: zero, so a zero weight meets a finite value
    uint16_t* p = pairs_.data() + (n / 2) * 2 * d + 1;
    for (int64_t c = 0; c < d; ++c) p[2 * c] = 0;
  }
}

void Bf16KvRows::set_row(int64_t j, const float* x) {
  const int64_t d = d_;
  uint16_t* __restrict r = rows_.data() + j * d;
  for (int64_t c = 0; c < d; ++c) r[c] = float_to_bf16(x[c]).bits;
  fill_pair_half(j);
}

void Bf16KvRows::set_row_bits(int64_t j, const uint16_t* bits) {
  std::copy_n(bits, d_, rows_.data() + j * d_);
  fill_pair_half(j);
}

// Row j into its half of its pair: a 32-bit merge per value (through memcpy, so no aliasing rule
// is bent), which compilers vectorise where a store to every other 16-bit slot they do not.
void Bf16KvRows::fill_pair_half(int64_t j) {
  const int64_t d = d_;  // a local and restrict pointers, or the loop re-reads members and stays scalar
  const uint16_t* __restrict r = rows_.data() + j * d;
  uint16_t* __restrict p = pairs_.data() + (j / 2) * 2 * d;
  const int shift = 16 * static_cast<int>(j % 2);
  const uint32_t keep = j % 2 ? 0x0000FFFFu : 0xFFFF0000u;
  for (int64_t c = 0; c < d; ++c) {
    uint32_t v;
    std::memcpy(&v, p + 2 * c, 4);
    v = (v & keep) | static_cast<uint32_t>(r[c]) << shift;
    std::memcpy(p + 2 * c, &v, 4);
  }
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
  fold_scores(scores.data(), n, scale, lo, hi);
  gemm_f32_nn(isa, scores.data(), n, v, ldv, o_.data(), dv_, m_, dv_, n, true);
}

void OnlineAttention::add_bf16(CpuIsa isa, const uint16_t* q, int64_t ldq, const Bf16KvRows& kv, const int32_t* idx, int64_t n,
                               float scale, const int64_t* lo, const int64_t* hi) {
  if (n <= 0) return;
  const int64_t d = kv.dim();
  thread_local std::vector<float> scores;
  thread_local std::vector<const uint16_t*> rows, pairs;
  thread_local std::vector<int32_t> slot;  // listed row j: 2 x its pair's place in `pairs` + its half
  thread_local std::vector<uint32_t> p2;
  rows.resize(n);
  pairs.clear();
  slot.resize(n);
  int32_t last = -1;
  for (int64_t j = 0; j < n; ++j) {
    rows[j] = kv.row(idx[j]);
    if (idx[j] / 2 != last) {
      last = idx[j] / 2;
      pairs.push_back(kv.pair(last));
    }
    slot[j] = static_cast<int32_t>(2 * (pairs.size() - 1)) + idx[j] % 2;
  }
  // Scattered rows, most in a stored pair of their own, go as pairs of listed rows instead (the
  // kernel interleaves them): half the products of stored pairs that are half unused.
  const bool split = 4 * static_cast<int64_t>(pairs.size()) > 3 * n;
  if (split) {
    for (int64_t j = 0; j < n; ++j) slot[j] = static_cast<int32_t>(j);
    if (n % 2) rows.push_back(rows[n - 1]);  // a second half of weight 0
  }
  const int64_t np = split ? (n + 1) / 2 : static_cast<int64_t>(pairs.size());
  scores.resize(m_ * n);
  const AttnBf16Kernels* dot = resolve_cpu_isa(isa) == CpuIsa::kAvx512 ? attention_bf16_dot(d) : nullptr;
  if (dot) {
    dot->scores(q, ldq, m_, rows.data(), n, d, scores.data(), n);
  } else {
    for (int64_t i = 0; i < m_; ++i)
      for (int64_t j = 0; j < n; ++j) {
        float s = 0;
        for (int64_t c = 0; c < d; ++c) s += bf16_to_float(Bf16{q[i * ldq + c]}) * bf16_to_float(Bf16{rows[j][c]});
        scores[i * n + j] = s;
      }
  }
  fold_scores(scores.data(), n, scale, lo, hi);
  p2.assign(m_ * np, 0u);
  auto* half = reinterpret_cast<uint16_t*>(p2.data());  // little-endian: the low half comes first
  for (int64_t i = 0; i < m_; ++i)
    for (int64_t j = 0; j < n; ++j) half[2 * i * np + slot[j]] = float_to_bf16(scores[i * n + j]).bits;
  if (dot) {
    (split ? dot->pv_rows : dot->pv)(p2.data(), np, m_, split ? rows.data() : pairs.data(), np, d, o_.data(), dv_);
    return;
  }
  auto value = [&](int64_t p, int h, int64_t c) { return bf16_to_float(Bf16{split ? rows[2 * p + h][c] : pairs[p][2 * c + h]}); };
  for (int64_t i = 0; i < m_; ++i)
    for (int64_t p = 0; p < np; ++p) {
      const float w0 = bf16_to_float(Bf16{half[2 * (i * np + p)]}), w1 = bf16_to_float(Bf16{half[2 * (i * np + p) + 1]});
      float* o = o_.data() + i * dv_;
      for (int64_t c = 0; c < d; ++c) o[c] += w0 * value(p, 0, c) + w1 * value(p, 1, c);
    }
}

void OnlineAttention::fold_scores(float* scores, int64_t n, float scale, const int64_t* lo, const int64_t* hi) {
  for (int64_t i = 0; i < m_; ++i) {
    float* s = scores + i * n;
    const int64_t j0 = lo ? std::max<int64_t>(0, lo[i]) : 0, j1 = hi ? std::min(n, hi[i]) : n;
    // The maximum and the sum go in kLanes partial results, so the loops vectorise (a float sum
    // in one chain cannot be reordered).
    constexpr int64_t kLanes = 16;
    const int64_t jv = j0 + std::max<int64_t>(0, j1 - j0) / kLanes * kLanes;
    float lane[kLanes];
    std::fill_n(lane, kLanes, max_[i]);
    for (int64_t j = j0; j < jv; j += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) lane[l] = std::max(lane[l], s[j + l] *= scale);
    float mx = *std::max_element(lane, lane + kLanes);
    for (int64_t j = jv; j < j1; ++j) mx = std::max(mx, s[j] *= scale);
    if (mx == kNegInf) {  // nothing visible yet: contributes nothing
      std::fill(s, s + n, 0.0f);
      continue;
    }
    const float rescale = max_[i] == kNegInf ? 0.0f : exp_nonpositive(max_[i] - mx);
    std::fill(s, s + j0, 0.0f);
    std::fill(s + std::max(j0, j1), s + n, 0.0f);
    std::fill_n(lane, kLanes, 0.0f);
    for (int64_t j = j0; j < jv; j += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) lane[l] += s[j + l] = exp_nonpositive(s[j + l] - mx);
    float sum = 0;
    for (int64_t j = jv; j < j1; ++j) sum += s[j] = exp_nonpositive(s[j] - mx);
    for (float x : lane) sum += x;
    sum_[i] = sum_[i] * rescale + sum;
    max_[i] = mx;
    if (rescale != 1.0f)
      for (float* o = o_.data() + i * dv_; o < o_.data() + (i + 1) * dv_; ++o) *o *= rescale;
  }
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
