// Element types of checkpoints and activations: the safetensors dtype enum, and bit-exact scalar
// conversions for the narrow float formats DeepSeek-V4 uses (spec §1.6): BF16, F16, FP8 E4M3FN,
// UE8M0 scales and FP4 E2M1. All float->narrow conversions round to nearest, ties to even, using
// integer arithmetic only, so results never depend on the FP environment's rounding mode.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace v4b {

// ---------------------------------------------------------------------------------------------
// Dtype enum with safetensors names.

enum class DType : uint8_t {
  F64,
  F32,
  F16,
  BF16,
  F8_E4M3,  // OCP E4M3FN
  F8_E5M2,
  F8_E8M0,  // UE8M0 power-of-two scales
  I64,
  I32,
  I16,
  I8,
  U64,
  U32,
  U16,
  U8,
  BOOL,
};

inline constexpr std::array<DType, 16> kAllDTypes = {
    DType::F64, DType::F32, DType::F16, DType::BF16, DType::F8_E4M3, DType::F8_E5M2,
    DType::F8_E8M0, DType::I64, DType::I32, DType::I16, DType::I8, DType::U64,
    DType::U32, DType::U16, DType::U8, DType::BOOL};

// The safetensors spelling: "F32", "BF16", "F8_E4M3", "F8_E8M0", "I64", ...
std::string_view dtype_name(DType t);
// Inverse of dtype_name; nullopt for names this engine does not know (case-sensitive, as in the format).
std::optional<DType> parse_dtype(std::string_view name);
// Bytes per element.
size_t dtype_size(DType t);

// ---------------------------------------------------------------------------------------------
// BF16 and F16: thin wrappers so a raw uint16_t is never mistaken for the other format.

struct Bf16 {
  uint16_t bits = 0;
};
struct F16 {
  uint16_t bits = 0;
};

// Round to nearest even; NaN stays NaN (quietened, sign kept), overflow rounds to infinity.
inline Bf16 float_to_bf16(float f) {
  const uint32_t b = std::bit_cast<uint32_t>(f);
  // Adding 0x7FFF plus the kept LSB rounds the dropped 16 bits to nearest even; a carry into the
  // exponent is the correct result (including rounding up to infinity). A select, not a branch,
  // so loops over it vectorise.
  const auto rounded = static_cast<uint16_t>((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
  const auto quiet_nan = static_cast<uint16_t>((b >> 16) | 0x0040);
  return Bf16{(b & 0x7FFFFFFF) > 0x7F800000 ? quiet_nan : rounded};
}
inline float bf16_to_float(Bf16 h) { return std::bit_cast<float>(static_cast<uint32_t>(h.bits) << 16); }
// f rounded to BF16 (as float_to_bf16 rounds), kept as a float.
inline float round_to_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

// IEEE binary16: round to nearest even, gradual underflow to subnormals, overflow to infinity,
// NaN stays NaN.
F16 float_to_f16(float f);
float f16_to_float(F16 h);

// ---------------------------------------------------------------------------------------------
// FP8 E4M3FN: bias 7, 3 mantissa bits, no infinities, 0x7F / 0xFF are NaN, max finite 448.

inline constexpr float kE4m3Max = 448.0f;
inline constexpr uint8_t kE4m3NaN = 0x7F;

namespace detail {
// Exact 2^e for the small exponents used below; constexpr so the tables are built at compile time.
constexpr float exp2i(int e) {
  float r = 1.0f;
  for (; e > 0; --e) r *= 2.0f;
  for (; e < 0; ++e) r *= 0.5f;
  return r;
}
constexpr float e4m3_decode_slow(uint8_t b) {
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  const int exp = (b >> 3) & 0xF;
  const int man = b & 0x7;
  if (exp == 0xF && man == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) return sign * static_cast<float>(man) * exp2i(-9);  // subnormal: m * 2^-6 / 8
  return sign * (1.0f + static_cast<float>(man) / 8.0f) * exp2i(exp - 7);
}
constexpr std::array<float, 256> make_e4m3_lut() {
  std::array<float, 256> t{};
  for (int i = 0; i < 256; ++i) t[static_cast<size_t>(i)] = e4m3_decode_slow(static_cast<uint8_t>(i));
  return t;
}
}  // namespace detail

// Decode table: byte -> float, exact.
inline constexpr std::array<float, 256> kE4m3Lut = detail::make_e4m3_lut();

inline float e4m3_to_float(uint8_t b) { return kE4m3Lut[b]; }
// Saturating: |f| > 448 (including infinity) gives ±448; NaN gives 0x7F with f's sign bit.
uint8_t float_to_e4m3(float f);

// ---------------------------------------------------------------------------------------------
// UE8M0: an unsigned 8-bit exponent, byte e -> 2^(e-127); e = 255 is NaN.

inline constexpr uint8_t kUe8m0NaN = 0xFF;

inline float ue8m0_to_float(uint8_t e) {
  if (e == kUe8m0NaN) return std::numeric_limits<float>::quiet_NaN();
  // 2^-127 is a float subnormal, so build e = 0 separately rather than via the exponent field.
  if (e == 0) return std::bit_cast<float>(uint32_t{0x00400000});
  return std::bit_cast<float>(static_cast<uint32_t>(e) << 23);
}
// Exponent k of 2^k -> byte k + 127. Requires -127 <= k <= 127 (throws std::out_of_range otherwise).
uint8_t ue8m0_from_exponent(int k);
// Smallest k with 2^k >= v, exact (no log2 rounding): for finite v > 0 only.
int pow2_ceil_exponent(float v);
// Encodes a value that must be an exact power of two in [2^-127, 2^127] (throws std::invalid_argument
// otherwise, since a UE8M0 byte cannot hold anything else).
uint8_t ue8m0_from_pow2(float s);

// ---------------------------------------------------------------------------------------------
// FP4 E2M1: codes 0..7 = 0, 0.5, 1, 1.5, 2, 3, 4, 6; bit 3 is the sign. Packed two per byte with the
// even element in the LOW nibble (spec §1.6).

inline constexpr float kE2m1Max = 6.0f;
inline constexpr std::array<float, 16> kE2m1Lut = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

inline float e2m1_to_float(uint8_t code) { return kE2m1Lut[code & 0xF]; }
// The magnitude code (0..7) nearest a (>= 0, not NaN), saturating at 6: the count of midpoints
// between neighbouring codes that a passes, at an exact midpoint the even code (hence the
// alternating > / >=). No branches: the codes of random values defeat a predictor.
inline int e2m1_magnitude_code(float a) {
  return (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f);
}
// Round to nearest even code, saturating at ±6. E2M1 has no NaN: NaN maps to +6 (code 0x7), the
// same choice as the PTX satfinite conversion, so a NaN is at least conspicuous rather than zero.
uint8_t float_to_e2m1(float f);

// Element i of a packed FP4 buffer.
inline uint8_t e2m1_code_at(const uint8_t* packed, size_t i) {
  return static_cast<uint8_t>((packed[i >> 1] >> ((i & 1) * 4)) & 0xF);
}

// ---------------------------------------------------------------------------------------------
// Bulk decoders (LUT based; the hot path for dequantising weights).

// dst[i] = e4m3(src[i]) for i < n.
void decode_e4m3(const uint8_t* src, float* dst, size_t n);
// dst[i] = e4m3(src[i]) * scale.
void decode_e4m3_scaled(const uint8_t* src, float scale, float* dst, size_t n);
// n elements from packed FP4 (ceil(n/2) bytes); an odd n reads only the low nibble of the last byte.
void decode_e2m1_packed(const uint8_t* src, float* dst, size_t n);
// Packs n 4-bit codes (high bits ignored) into ceil(n/2) bytes; an odd n leaves the last high nibble 0.
void pack_e2m1(const uint8_t* codes, uint8_t* dst, size_t n);
// dst[i] = bf16(src[i]).
void decode_bf16(const uint16_t* src, float* dst, size_t n);

}  // namespace v4b
