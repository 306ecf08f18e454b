// Machine-ceiling loops written with GCC vector extensions, so each ISA build (probe_*.cpp with its
// own -m flags) lowers them to that ISA's widest registers. Include only from those files, inside a
// namespace unique to the ISA.
#pragma once

#include <cstdint>

namespace probe_impl {

typedef float V16 __attribute__((vector_size(64)));

// Sums n floats (n a multiple of 64) with independent accumulators so loads, not adds, limit it.
inline float sum_floats(const float* p, int64_t n) {
  V16 a0{}, a1{}, a2{}, a3{};
  for (int64_t i = 0; i < n; i += 64) {
    V16 v0, v1, v2, v3;
    __builtin_memcpy(&v0, p + i, 64);
    __builtin_memcpy(&v1, p + i + 16, 64);
    __builtin_memcpy(&v2, p + i + 32, 64);
    __builtin_memcpy(&v3, p + i + 48, 64);
    a0 += v0;
    a1 += v1;
    a2 += v2;
    a3 += v3;
  }
  const V16 s = (a0 + a1) + (a2 + a3);
  float t = 0;
  for (int i = 0; i < 16; ++i) t += s[i];
  return t;
}

// 12 independent multiply-add chains of 16 lanes: iters * 12 * 16 * 2 FLOPs.
inline float fma_chains(int64_t iters, float seed) {
  V16 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = V16{} + seed * static_cast<float>(j + 1);
  const V16 m = V16{} + 0.999999f, a = V16{} + 1e-7f;
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) acc[j] = acc[j] * m + a;
  }
  V16 s{};
  for (int j = 0; j < 12; ++j) s += acc[j];
  float t = 0;
  for (int i = 0; i < 16; ++i) t += s[i];
  return t;
}

}  // namespace probe_impl
