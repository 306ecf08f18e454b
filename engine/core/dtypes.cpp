#include "engine/core/dtypes.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace v4b {

namespace {

struct DTypeEntry {
  DType type;
  std::string_view name;
  size_t size;
};

constexpr std::array<DTypeEntry, 16> kDTypeTable = {{
    {DType::F64, "F64", 8},
    {DType::F32, "F32", 4},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::F8_E8M0, "F8_E8M0", 1},
    {DType::I64, "I64", 8},
    {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},
    {DType::U64, "U64", 8},
    {DType::U32, "U32", 4},
    {DType::U16, "U16", 2},
    {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
}};

const DTypeEntry& entry(DType t) {
  for (const auto& e : kDTypeTable)
    if (e.type == t) return e;
  throw std::invalid_argument("unknown DType value " + std::to_string(static_cast<int>(t)));
}

// round(m / 2^shift) with ties to even, for shift >= 0; the building block of every subnormal path.
uint32_t shift_rne(uint32_t m, int shift) {
  if (shift <= 0) return m;
  if (shift >= 32) return 0;  // m < 2^24 here, so the quotient is below one half
  const uint32_t q = m >> shift;
  const uint32_t rem = m & ((uint32_t{1} << shift) - 1);
  const uint32_t half = uint32_t{1} << (shift - 1);
  return (rem > half || (rem == half && (q & 1))) ? q + 1 : q;
}

// Splits a finite, non-negative float's bit pattern into (significand with implicit bit, exponent)
// such that value = sig * 2^(exp - 150). Float subnormals get exponent 1 and no implicit bit.
void split(uint32_t abs_bits, uint32_t& sig, int& exp) {
  exp = static_cast<int>(abs_bits >> 23);
  sig = abs_bits & 0x7FFFFF;
  if (exp == 0)
    exp = 1;
  else
    sig |= 0x800000;
}

}  // namespace

std::string_view dtype_name(DType t) { return entry(t).name; }
size_t dtype_size(DType t) { return entry(t).size; }

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& e : kDTypeTable)
    if (e.name == name) return e.type;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------

F16 float_to_f16(float f) {
  const uint32_t b = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((b >> 16) & 0x8000);
  const uint32_t a = b & 0x7FFFFFFF;
  if (a > 0x7F800000) return F16{static_cast<uint16_t>(sign | 0x7E00 | ((a >> 13) & 0x3FF))};
  if (a >= 0x477FF000) return F16{static_cast<uint16_t>(sign | 0x7C00)};  // >= 65520 rounds to inf
  if (a >= 0x38800000) {                                                   // >= 2^-14: normal half
    const uint32_t r = a - (uint32_t{112} << 23);                          // rebias 127 -> 15
    return F16{static_cast<uint16_t>(sign | ((r + 0xFFF + ((r >> 13) & 1)) >> 13))};
  }
  // Subnormal half: q = round(value * 2^24) with value = sig * 2^(exp-150). q may reach 0x400,
  // which is exactly the smallest normal's encoding.
  uint32_t sig;
  int exp;
  split(a, sig, exp);
  return F16{static_cast<uint16_t>(sign | shift_rne(sig, 126 - exp))};
}

float f16_to_float(F16 h) {
  const uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000) << 16;
  const uint32_t exp = (h.bits >> 10) & 0x1F;
  const uint32_t man = h.bits & 0x3FF;
  if (exp == 0x1F) return std::bit_cast<float>(sign | 0x7F800000 | (man << 13));
  if (exp == 0) {
    // Subnormal: man * 2^-24, exact in float.
    const float v = static_cast<float>(man) * detail::exp2i(-24);
    return sign ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
}

// ---------------------------------------------------------------------------------------------

uint8_t float_to_e4m3(float f) {
  const uint32_t b = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint8_t>((b >> 24) & 0x80);
  const uint32_t a = b & 0x7FFFFFFF;
  if (a > 0x7F800000) return sign | kE4m3NaN;
  if (a >= 0x43E00000) return sign | 0x7E;  // |f| >= 448 (incl. inf): saturate
  if (a >= 0x3C800000) {                    // >= 2^-6: normal E4M3
    // Round the 23-bit mantissa to 3 bits (ties to even), then rebias 127 -> 7. Inputs below 448
    // round to at most 448, so the result never reaches the NaN code.
    const uint32_t r = (a + 0x7FFFF + ((a >> 20) & 1)) >> 20;
    return static_cast<uint8_t>(sign | (r - (uint32_t{120} << 3)));
  }
  // Subnormal E4M3: q = round(value * 2^9); q = 8 encodes the smallest normal 2^-6.
  uint32_t sig;
  int exp;
  split(a, sig, exp);
  return static_cast<uint8_t>(sign | shift_rne(sig, 141 - exp));
}

// ---------------------------------------------------------------------------------------------

uint8_t ue8m0_from_exponent(int k) {
  if (k < -127 || k > 127) throw std::out_of_range("UE8M0 exponent " + std::to_string(k) + " outside [-127, 127]");
  return static_cast<uint8_t>(k + 127);
}

int pow2_ceil_exponent(float v) {
  // frexp gives v = m * 2^e with m in [0.5, 1): ceil(log2 v) is e, or e - 1 when m is exactly 0.5.
  int e = 0;
  const float m = std::frexp(v, &e);
  return m == 0.5f ? e - 1 : e;
}

uint8_t ue8m0_from_pow2(float s) {
  int e = 0;
  const float m = std::frexp(s, &e);
  if (!(m == 0.5f) || e - 1 < -127 || e - 1 > 127)
    throw std::invalid_argument("UE8M0 scale " + std::to_string(s) + " is not a power of two in [2^-127, 2^127]");
  return static_cast<uint8_t>(e - 1 + 127);
}

// ---------------------------------------------------------------------------------------------

uint8_t float_to_e2m1(float f) {
  const uint32_t b = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint8_t>((b >> 28) & 0x8);
  const float a = std::bit_cast<float>(b & 0x7FFFFFFF);
  if (std::isnan(a)) return 0x7;
  return static_cast<uint8_t>(sign | e2m1_magnitude_code(a));
}

// ---------------------------------------------------------------------------------------------

namespace {
// Both nibbles of a packed FP4 byte at once: one 8-byte load per input byte.
struct E2m1Pair {
  float lo, hi;
};
constexpr std::array<E2m1Pair, 256> make_e2m1_pair_lut() {
  std::array<E2m1Pair, 256> t{};
  for (size_t i = 0; i < 256; ++i) t[i] = {kE2m1Lut[i & 0xF], kE2m1Lut[i >> 4]};
  return t;
}
constexpr std::array<E2m1Pair, 256> kE2m1PairLut = make_e2m1_pair_lut();
}  // namespace

void decode_e4m3(const uint8_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = kE4m3Lut[src[i]];
}

void decode_e4m3_scaled(const uint8_t* src, float scale, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = kE4m3Lut[src[i]] * scale;
}

void decode_e2m1_packed(const uint8_t* src, float* dst, size_t n) {
  const size_t pairs = n / 2;
  for (size_t j = 0; j < pairs; ++j) {
    const E2m1Pair p = kE2m1PairLut[src[j]];
    dst[2 * j] = p.lo;
    dst[2 * j + 1] = p.hi;
  }
  if (n & 1) dst[n - 1] = kE2m1Lut[src[pairs] & 0xF];
}

void pack_e2m1(const uint8_t* codes, uint8_t* dst, size_t n) {
  for (size_t j = 0; j < n / 2; ++j)
    dst[j] = static_cast<uint8_t>((codes[2 * j] & 0xF) | ((codes[2 * j + 1] & 0xF) << 4));
  if (n & 1) dst[n / 2] = codes[n - 1] & 0xF;
}

void decode_bf16(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_float(Bf16{src[i]});
}

}  // namespace v4b
