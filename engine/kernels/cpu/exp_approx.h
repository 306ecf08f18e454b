// Branch-free exponentials, so the loops that call them vectorise (libm's scalar expf costs as much
// as the products around it in attention and the MoE's SwiGLU).
#pragma once

#include <bit>
#include <cstdint>

namespace v4b {

// e^x for x <= 0, within about 2 ulp of expf: Cody-Waite reduction by ln 2 and Cephes' degree-6
// polynomial; below -87 it returns e^-87 (about 1.6e-38) rather than a subnormal or zero.
inline float exp_nonpositive(float x) {
  x = x > -87.0f ? x : -87.0f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float k = (x * 1.44269504088896341f + kRound) - kRound;
  float r = x - k * 0.693359375f;
  r -= k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  return y * std::bit_cast<float>(static_cast<uint32_t>(static_cast<int32_t>(k) + 127) << 23);
}

// x / (1 + e^-x), with e^-|x| so the exponential never overflows.
inline float silu_approx(float x) {
  const float e = exp_nonpositive(x < 0.0f ? x : -x);
  return x * ((x < 0.0f ? e : 1.0f) / (1.0f + e));
}

}  // namespace v4b
