#include "engine/core/qdq.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/core/dtypes.h"

namespace v4b {

namespace {

// Exact 2^k for -127 <= k <= 127 (2^-127 is a float subnormal).
float pow2f(int k) {
  if (k == -127) return std::bit_cast<float>(uint32_t{0x00400000});
  return std::bit_cast<float>(static_cast<uint32_t>(k + 127) << 23);
}

// Largest |x| over the block; NaN if any element is NaN (std::max would silently drop it).
float block_amax(const float* x, size_t n) {
  float amax = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (std::isnan(a)) return a;
    amax = std::max(amax, a);
  }
  return amax;
}

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(what);
}

}  // namespace

// The official kernels compute amax * fp32(1/448) rather than amax / 448; an exhaustive check over
// every float significand shows both give the same ceil(log2) (the product never crosses a power of
// two that the quotient does not), so the spec's division is used.
int e4m3_scale_exponent(float amax) { return pow2_ceil_exponent(std::max(amax, kActAmaxFloor) / kE4m3Max); }

int e2m1_scale_exponent(float amax) {
  const float amax_floor = kE2m1Max * std::numeric_limits<float>::min();  // 6 * 2^-126
  return pow2_ceil_exponent(std::max(amax, amax_floor) / kE2m1Max);
}

void act_quant(std::span<const float> x, std::span<uint8_t> codes, std::span<uint8_t> scales) {
  const size_t n = x.size();
  const size_t nblocks = (n + kActQuantBlock - 1) / kActQuantBlock;
  require(codes.size() == n, "act_quant: codes must be as long as x");
  require(scales.size() == nblocks, "act_quant: scales must hold ceil(n/128) bytes");
  for (size_t b = 0; b < nblocks; ++b) {
    const size_t lo = b * kActQuantBlock;
    const size_t len = std::min(kActQuantBlock, n - lo);
    const float amax = block_amax(x.data() + lo, len);
    if (!std::isfinite(amax)) {
      scales[b] = kUe8m0NaN;
      std::fill_n(codes.data() + lo, len, kE4m3NaN);
      continue;
    }
    const int k = e4m3_scale_exponent(amax);
    scales[b] = ue8m0_from_exponent(k);
    const float inv = pow2f(-k);  // x * 2^-k is exact, so it equals the reference's x / s
    for (size_t i = lo; i < lo + len; ++i) codes[i] = float_to_e4m3(std::clamp(x[i] * inv, -kE4m3Max, kE4m3Max));
  }
}

void act_dequant(std::span<const uint8_t> codes, std::span<const uint8_t> scales, std::span<float> out) {
  const size_t n = codes.size();
  const size_t nblocks = (n + kActQuantBlock - 1) / kActQuantBlock;
  require(out.size() == n, "act_dequant: out must be as long as codes");
  require(scales.size() == nblocks, "act_dequant: scales must hold ceil(n/128) bytes");
  for (size_t b = 0; b < nblocks; ++b) {
    const size_t lo = b * kActQuantBlock;
    const size_t len = std::min(kActQuantBlock, n - lo);
    decode_e4m3_scaled(codes.data() + lo, ue8m0_to_float(scales[b]), out.data() + lo, len);
  }
}

namespace {

// E4M3 round-to-nearest-even of |v| <= 448, as a float, branch-free so the loop vectorises: three
// mantissa bits kept for normals (|v| >= 2^-6), multiples of 2^-9 below (adding 1.5 x 2^14 keeps
// the sum in [2^14, 2^15), whose last place is 2^-9, and the FPU rounds to it, to nearest even;
// IEEE arithmetic, which the build keeps: no -ffast-math).
inline float e4m3_round(float v) {
  uint32_t b = std::bit_cast<uint32_t>(v);
  b = (b + 0x7FFFFu + ((b >> 20) & 1u)) & 0xFFF00000u;
  const float normal = std::bit_cast<float>(b);
  const float sub = (v + 24576.0f) - 24576.0f;
  return std::fabs(v) >= 0.015625f ? normal : sub;
}

}  // namespace

// Vectorised for the widest of these the CPU has (GCC function multiversioning): both run over
// every activation of an official pass.
#if defined(__x86_64__) && defined(__GNUC__)
#define V4B_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define V4B_CLONES
#endif

V4B_CLONES void act_qdq(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t lo = 0; lo < cols; lo += static_cast<int64_t>(kActQuantBlock)) {
      float* blk = x + r * cols + lo;
      const int64_t len = std::min<int64_t>(kActQuantBlock, cols - lo);
      // The largest magnitude by its bits (an integer max vectorises; NaN's bits sort above infinity's).
      uint32_t amax_bits = 0;
      for (int64_t i = 0; i < len; ++i) amax_bits = std::max(amax_bits, std::bit_cast<uint32_t>(blk[i]) & 0x7FFFFFFFu);
      if (amax_bits >= 0x7F800000u) {
        std::fill_n(blk, len, std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      const int k = e4m3_scale_exponent(std::bit_cast<float>(amax_bits));
      const float inv = pow2f(-k), s = pow2f(k);
      for (int64_t i = 0; i < len; ++i) blk[i] = e4m3_round(std::min(std::max(blk[i] * inv, -kE4m3Max), kE4m3Max)) * s;
    }
}

V4B_CLONES void round_bf16(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = round_to_bf16(x[i]);
}

void kv_fp8_qdq(std::span<float> kv) {
  require(kv.size() >= kKvNopeDims, "kv_fp8_qdq: vector shorter than 448 nope dims");
  for (size_t lo = 0; lo < kKvNopeDims; lo += kKvQdqBlock) {
    float* blk = kv.data() + lo;
    const float amax = block_amax(blk, kKvQdqBlock);
    if (!std::isfinite(amax)) {
      // The reference's scale becomes inf/NaN, which turns the whole block into NaN.
      std::fill_n(blk, kKvQdqBlock, std::numeric_limits<float>::quiet_NaN());
      continue;
    }
    const int k = e4m3_scale_exponent(amax);
    const float inv = pow2f(-k);
    const float s = pow2f(k);
    for (size_t i = 0; i < kKvQdqBlock; ++i)
      blk[i] = e4m3_to_float(float_to_e4m3(std::clamp(blk[i] * inv, -kE4m3Max, kE4m3Max))) * s;
  }
}

void fp4_qdq(std::span<float> x) {
  require(x.size() % kFp4QdqBlock == 0, "fp4_qdq: size must be a multiple of 32");
  for (size_t lo = 0; lo < x.size(); lo += kFp4QdqBlock) {
    float* blk = x.data() + lo;
    const float amax = block_amax(blk, kFp4QdqBlock);
    if (!std::isfinite(amax)) {
      std::fill_n(blk, kFp4QdqBlock, std::numeric_limits<float>::quiet_NaN());
      continue;
    }
    const int k = e2m1_scale_exponent(amax);
    const float inv = pow2f(-k);
    const float s = pow2f(k);
    for (size_t i = 0; i < kFp4QdqBlock; ++i)
      blk[i] = std::copysign(kE2m1Lut[e2m1_magnitude_code(std::fabs(blk[i] * inv))], blk[i]) * s;
  }
}

void hadamard_128(std::span<float> x) {
  require(x.size() % kHadamardSize == 0, "hadamard_128: size must be a multiple of 128");
  // 1/sqrt(128) = 2^-3.5, rounded once to float.
  constexpr float kScale = 0.088388347648318440550f;
  for (size_t lo = 0; lo < x.size(); lo += kHadamardSize) {
    float* v = x.data() + lo;
    // Radix-2 butterflies in this order build H_{2n} = [[H_n, H_n], [H_n, -H_n]], i.e. Sylvester order.
    for (size_t h = 1; h < kHadamardSize; h *= 2) {
      for (size_t i = 0; i < kHadamardSize; i += 2 * h) {
        for (size_t j = i; j < i + h; ++j) {
          const float a = v[j];
          const float b = v[j + h];
          v[j] = a + b;
          v[j + h] = a - b;
        }
      }
    }
    for (size_t i = 0; i < kHadamardSize; ++i) v[i] *= kScale;
  }
}

}  // namespace v4b
