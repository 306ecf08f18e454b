#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "engine/core/dtypes.h"

using namespace v4b;

namespace {
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();
float bits_f(uint32_t b) { return std::bit_cast<float>(b); }
float up(float x) { return std::nextafter(x, kInf); }
float down(float x) { return std::nextafter(x, -kInf); }
}  // namespace

// ---------------------------------------------------------------------------------------------
// DType

TEST(DTypes, NamesAndSizesRoundTrip) {
  for (DType t : kAllDTypes) {
    const auto parsed = parse_dtype(dtype_name(t));
    ASSERT_TRUE(parsed.has_value()) << dtype_name(t);
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(dtype_name(DType::F8_E4M3), "F8_E4M3");
  EXPECT_EQ(dtype_name(DType::F8_E8M0), "F8_E8M0");
  EXPECT_EQ(dtype_name(DType::BF16), "BF16");
  EXPECT_EQ(dtype_name(DType::I64), "I64");
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::F8_E4M3), 1u);
  EXPECT_EQ(dtype_size(DType::F8_E8M0), 1u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_size(DType::I32), 4u);
  EXPECT_EQ(dtype_size(DType::I16), 2u);
  EXPECT_EQ(dtype_size(DType::I8), 1u);
  EXPECT_EQ(dtype_size(DType::BOOL), 1u);
}

TEST(DTypes, UnknownNamesRejected) {
  for (const char* bad : {"", "f32", "F4", "FP8", "F8_E4M3FN", "bfloat16", "F32 "})
    EXPECT_FALSE(parse_dtype(bad).has_value()) << bad;
}

// ---------------------------------------------------------------------------------------------
// E4M3

TEST(E4m3, HandDecodedValues) {
  struct Case {
    uint8_t code;
    float value;
  };
  const Case cases[] = {
      {0x00, 0.0f},         {0x01, 0.001953125f},  // 2^-9, smallest subnormal
      {0x04, 0.0078125f},   {0x07, 0.013671875f},  // 7 * 2^-9, largest subnormal
      {0x08, 0.015625f},                           // 2^-6, smallest normal
      {0x30, 0.5f},         {0x38, 1.0f},       {0x39, 1.125f}, {0x3A, 1.25f}, {0x3F, 1.875f},
      {0x40, 2.0f},         {0x48, 4.0f},       {0x70, 128.0f}, {0x77, 240.0f}, {0x78, 256.0f},
      {0x7C, 384.0f},       {0x7D, 416.0f},     {0x7E, 448.0f}, {0xB8, -1.0f},  {0xFE, -448.0f},
      {0x81, -0.001953125f},
  };
  for (const auto& c : cases) EXPECT_EQ(e4m3_to_float(c.code), c.value) << std::hex << int(c.code);
  EXPECT_TRUE(std::signbit(e4m3_to_float(0x80)));
  EXPECT_EQ(e4m3_to_float(0x80), 0.0f);
  EXPECT_TRUE(std::isnan(e4m3_to_float(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3_to_float(0xFF)));
}

TEST(E4m3, FullTableMatchesFormula) {
  // Independent of the LUT's construction: ldexp on the bit fields.
  for (int b = 0; b < 256; ++b) {
    const int exp = (b >> 3) & 0xF, man = b & 7;
    const float sign = (b & 0x80) ? -1.0f : 1.0f;
    const float v = e4m3_to_float(static_cast<uint8_t>(b));
    if ((b & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(v)) << b;
      continue;
    }
    const float expect = exp == 0 ? sign * std::ldexp(static_cast<float>(man), -9)
                                  : sign * std::ldexp(1.0f + man / 8.0f, exp - 7);
    EXPECT_EQ(v, expect) << b;
  }
  // Positive codes are strictly increasing: no duplicate or misplaced entries.
  for (int b = 1; b <= 0x7E; ++b) EXPECT_LT(e4m3_to_float(static_cast<uint8_t>(b - 1)), e4m3_to_float(static_cast<uint8_t>(b)));
}

TEST(E4m3, EncodeRoundTripsEveryCode) {
  for (int b = 0; b < 256; ++b) {
    const auto code = static_cast<uint8_t>(b);
    const uint8_t back = float_to_e4m3(e4m3_to_float(code));
    if ((b & 0x7F) == 0x7F)
      EXPECT_EQ(back & 0x7F, 0x7F) << b;  // NaN stays NaN
    else
      EXPECT_EQ(back, code) << b;
  }
}

TEST(E4m3, SaturatesAt448) {
  for (float v : {448.0f, up(448.0f), 449.0f, 463.99f, 464.0f, 465.0f, 480.0f, 512.0f, 1e9f, 3.4e38f, kInf}) {
    EXPECT_EQ(float_to_e4m3(v), 0x7E) << v;
    EXPECT_EQ(float_to_e4m3(-v), 0xFE) << v;
  }
  EXPECT_EQ(float_to_e4m3(down(448.0f)), 0x7E);
  EXPECT_EQ(float_to_e4m3(kNaN), 0x7F);
  EXPECT_EQ(float_to_e4m3(-kNaN), 0xFF);
}

TEST(E4m3, RoundsHalfwayToEven) {
  // Normal range: 1.0 (0x38) .. 1.125 (0x39) .. 1.25 (0x3A).
  EXPECT_EQ(float_to_e4m3(1.0625f), 0x38);
  EXPECT_EQ(float_to_e4m3(up(1.0625f)), 0x39);
  EXPECT_EQ(float_to_e4m3(down(1.0625f)), 0x38);
  EXPECT_EQ(float_to_e4m3(1.1875f), 0x3A);
  EXPECT_EQ(float_to_e4m3(down(1.1875f)), 0x39);
  EXPECT_EQ(float_to_e4m3(-1.1875f), 0xBA);
  // Top of the range: 384 (0x7C), 416 (0x7D), 448 (0x7E).
  EXPECT_EQ(float_to_e4m3(400.0f), 0x7C);
  EXPECT_EQ(float_to_e4m3(up(400.0f)), 0x7D);
  EXPECT_EQ(float_to_e4m3(432.0f), 0x7E);
  EXPECT_EQ(float_to_e4m3(down(432.0f)), 0x7D);
  // Binade crossing: 1.875 (0x3F) .. 2.0 (0x40), tie 1.9375 goes to 2.0 (even mantissa 0).
  EXPECT_EQ(float_to_e4m3(1.9375f), 0x40);
  EXPECT_EQ(float_to_e4m3(down(1.9375f)), 0x3F);
}

TEST(E4m3, SubnormalsRoundCorrectly) {
  const float q = std::ldexp(1.0f, -9);  // subnormal step
  EXPECT_EQ(float_to_e4m3(0.5f * q), 0x00);  // tie to even 0
  EXPECT_EQ(float_to_e4m3(up(0.5f * q)), 0x01);
  EXPECT_EQ(float_to_e4m3(1.5f * q), 0x02);  // tie to even 2
  EXPECT_EQ(float_to_e4m3(2.5f * q), 0x02);
  EXPECT_EQ(float_to_e4m3(3.0f * q), 0x03);
  EXPECT_EQ(float_to_e4m3(7.5f * q), 0x08);  // tie rounds up into the smallest normal
  EXPECT_EQ(float_to_e4m3(down(7.5f * q)), 0x07);
  EXPECT_EQ(float_to_e4m3(down(std::ldexp(1.0f, -6))), 0x08);
  EXPECT_EQ(float_to_e4m3(1e-45f), 0x00);  // float subnormal input
  EXPECT_EQ(float_to_e4m3(-1e-30f), 0x80);
  EXPECT_EQ(float_to_e4m3(-0.0f), 0x80);
}

TEST(E4m3, EncodeIsNearestOnRandomInputs) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
  std::uniform_int_distribution<int> ex(-14, 10);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::ldexp(mant(rng), ex(rng));
    const uint8_t c = float_to_e4m3(x);
    const float y = e4m3_to_float(c);
    const float ax = std::min(std::fabs(x), 448.0f);
    // No other finite code is strictly closer.
    for (int b = 0; b <= 0x7E; ++b) {
      const float v = e4m3_to_float(static_cast<uint8_t>(b));
      ASSERT_LE(std::fabs(std::fabs(y) - ax), std::fabs(v - ax)) << x;
    }
  }
}

TEST(E4m3, BulkDecode) {
  std::vector<uint8_t> src(256);
  for (int i = 0; i < 256; ++i) src[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
  std::vector<float> out(256), scaled(256);
  decode_e4m3(src.data(), out.data(), src.size());
  decode_e4m3_scaled(src.data(), 0.25f, scaled.data(), src.size());
  for (int i = 0; i < 256; ++i) {
    if ((i & 0x7F) == 0x7F) continue;
    EXPECT_EQ(out[static_cast<size_t>(i)], e4m3_to_float(static_cast<uint8_t>(i)));
    EXPECT_EQ(scaled[static_cast<size_t>(i)], e4m3_to_float(static_cast<uint8_t>(i)) * 0.25f);
  }
}

// ---------------------------------------------------------------------------------------------
// E2M1

TEST(E2m1, CodeTable) {
  const float expect[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  for (uint8_t c = 0; c < 16; ++c) {
    EXPECT_EQ(e2m1_to_float(c), expect[c]) << int(c);
    EXPECT_EQ(std::signbit(e2m1_to_float(c)), c >= 8) << int(c);
    EXPECT_EQ(float_to_e2m1(e2m1_to_float(c)), c) << int(c);  // every code round trips
  }
}

TEST(E2m1, RoundsHalfwayToEvenAndSaturates) {
  struct Case {
    float x;
    uint8_t code;
  };
  const Case cases[] = {
      {0.25f, 0}, {up(0.25f), 1}, {0.75f, 2},  {down(0.75f), 1}, {1.25f, 2}, {up(1.25f), 3},
      {1.75f, 4}, {down(1.75f), 3}, {2.5f, 4}, {up(2.5f), 5},    {3.5f, 6},  {down(3.5f), 5},
      {5.0f, 6},  {up(5.0f), 7},  {6.0f, 7},   {7.0f, 7},        {1e30f, 7}, {kInf, 7},
      {-5.0f, 14}, {-kInf, 15},   {-0.1f, 8},  {kNaN, 7},
  };
  for (const auto& c : cases) EXPECT_EQ(float_to_e2m1(c.x), c.code) << c.x;
}

TEST(E2m1, PackedNibbleOrderLowIsEven) {
  const uint8_t codes[5] = {0x1, 0x2, 0xF, 0x7, 0x3};
  uint8_t packed[3] = {0xAA, 0xAA, 0xAA};
  pack_e2m1(codes, packed, 5);
  EXPECT_EQ(packed[0], 0x21);
  EXPECT_EQ(packed[1], 0x7F);
  EXPECT_EQ(packed[2], 0x03);
  float out[5];
  decode_e2m1_packed(packed, out, 5);
  EXPECT_EQ(out[0], 0.5f);
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[2], -6.0f);
  EXPECT_EQ(out[3], 6.0f);
  EXPECT_EQ(out[4], 1.5f);
  EXPECT_EQ(e2m1_code_at(packed, 2), 0xF);
  EXPECT_EQ(e2m1_code_at(packed, 3), 0x7);
}

// ---------------------------------------------------------------------------------------------
// UE8M0

TEST(Ue8m0, DecodeAndEncode) {
  EXPECT_EQ(ue8m0_to_float(127), 1.0f);
  EXPECT_EQ(ue8m0_to_float(120), 0.0078125f);
  EXPECT_EQ(ue8m0_to_float(128), 2.0f);
  EXPECT_EQ(ue8m0_to_float(254), std::ldexp(1.0f, 127));
  EXPECT_EQ(ue8m0_to_float(1), std::ldexp(1.0f, -126));
  EXPECT_EQ(ue8m0_to_float(0), std::ldexp(1.0f, -127));
  EXPECT_TRUE(std::isnan(ue8m0_to_float(255)));
  for (int e = 0; e < 255; ++e) EXPECT_EQ(ue8m0_from_pow2(ue8m0_to_float(static_cast<uint8_t>(e))), e);
  EXPECT_EQ(ue8m0_from_exponent(-7), 120);
  EXPECT_THROW(ue8m0_from_exponent(128), std::out_of_range);
  EXPECT_THROW(ue8m0_from_exponent(-128), std::out_of_range);
  EXPECT_THROW(ue8m0_from_pow2(3.0f), std::invalid_argument);
  EXPECT_THROW(ue8m0_from_pow2(0.0f), std::invalid_argument);
}

TEST(Ue8m0, CeilLog2IsExact) {
  EXPECT_EQ(pow2_ceil_exponent(1.0f), 0);
  EXPECT_EQ(pow2_ceil_exponent(up(1.0f)), 1);
  EXPECT_EQ(pow2_ceil_exponent(down(1.0f)), 0);
  EXPECT_EQ(pow2_ceil_exponent(0.5f), -1);
  EXPECT_EQ(pow2_ceil_exponent(0.75f), 0);
  EXPECT_EQ(pow2_ceil_exponent(3.0f / 448.0f), -7);
  EXPECT_EQ(pow2_ceil_exponent(std::ldexp(1.0f, -126)), -126);
  EXPECT_EQ(pow2_ceil_exponent(std::ldexp(1.0f, -140)), -140);  // subnormal input
  EXPECT_EQ(pow2_ceil_exponent(std::ldexp(1.0f, 127)), 127);
  for (int k = -149; k <= 127; ++k) {
    const float p = std::ldexp(1.0f, k);
    EXPECT_EQ(pow2_ceil_exponent(p), k);
    if (k < 127) {
      EXPECT_EQ(pow2_ceil_exponent(up(p)), k + 1);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// BF16

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f).bits, 0x3F80);
  EXPECT_EQ(float_to_bf16(bits_f(0x3F808000)).bits, 0x3F80);  // halfway, even below
  EXPECT_EQ(float_to_bf16(bits_f(0x3F818000)).bits, 0x3F82);  // halfway, even above
  EXPECT_EQ(float_to_bf16(bits_f(0x3F808001)).bits, 0x3F81);
  EXPECT_EQ(float_to_bf16(bits_f(0x3F807FFF)).bits, 0x3F80);
  EXPECT_EQ(float_to_bf16(bits_f(0xBF818000)).bits, 0xBF82);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()).bits, 0x7F80);  // rounds to inf
  EXPECT_EQ(float_to_bf16(kInf).bits, 0x7F80);
  EXPECT_EQ(float_to_bf16(-kInf).bits, 0xFF80);
  EXPECT_EQ(float_to_bf16(bits_f(0x00018000)).bits, 0x0002);  // subnormal tie to even
}

TEST(Bf16, NaNStaysNaN) {
  // A signalling NaN with only low payload bits would become infinity under naive rounding.
  for (uint32_t nan : {0x7F800001u, 0x7FC00000u, 0xFF800001u, 0x7FFFFFFFu}) {
    const Bf16 h = float_to_bf16(bits_f(nan));
    EXPECT_TRUE(std::isnan(bf16_to_float(h))) << std::hex << nan;
    EXPECT_EQ(h.bits & 0x8000, (nan >> 16) & 0x8000);
  }
}

TEST(Bf16, EveryPatternRoundTrips) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16_to_float(Bf16{static_cast<uint16_t>(b)});
    EXPECT_EQ(std::bit_cast<uint32_t>(f), b << 16);
    if (!std::isnan(f)) {
      EXPECT_EQ(float_to_bf16(f).bits, b);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// F16

TEST(F16, HandValues) {
  EXPECT_EQ(float_to_f16(1.0f).bits, 0x3C00);
  EXPECT_EQ(float_to_f16(-2.0f).bits, 0xC000);
  EXPECT_EQ(float_to_f16(65504.0f).bits, 0x7BFF);
  EXPECT_EQ(float_to_f16(down(65520.0f)).bits, 0x7BFF);
  EXPECT_EQ(float_to_f16(65520.0f).bits, 0x7C00);  // halfway to 2^16 rounds to inf
  EXPECT_EQ(float_to_f16(kInf).bits, 0x7C00);
  EXPECT_EQ(float_to_f16(-kInf).bits, 0xFC00);
  EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(kNaN))));
  EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(bits_f(0x7F800001)))));  // low-payload NaN
  EXPECT_EQ(float_to_f16(1.0f + std::ldexp(1.0f, -11)).bits, 0x3C00);            // tie, even below
  EXPECT_EQ(float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)).bits, 0x3C02);        // tie, even above
}

TEST(F16, Subnormals) {
  const float q = std::ldexp(1.0f, -24);  // smallest half subnormal
  EXPECT_EQ(float_to_f16(q).bits, 0x0001);
  EXPECT_EQ(float_to_f16(0.5f * q).bits, 0x0000);  // tie to even 0
  EXPECT_EQ(float_to_f16(up(0.5f * q)).bits, 0x0001);
  EXPECT_EQ(float_to_f16(1.5f * q).bits, 0x0002);
  EXPECT_EQ(float_to_f16(2.5f * q).bits, 0x0002);
  EXPECT_EQ(float_to_f16(1023.0f * q).bits, 0x03FF);
  EXPECT_EQ(float_to_f16(1023.5f * q).bits, 0x0400);  // rounds into the smallest normal
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -14)).bits, 0x0400);
  EXPECT_EQ(float_to_f16(-3.0f * q).bits, 0x8003);
  EXPECT_EQ(float_to_f16(1e-45f).bits, 0x0000);
  EXPECT_EQ(f16_to_float(F16{0x0001}), q);
  EXPECT_EQ(f16_to_float(F16{0x03FF}), 1023.0f * q);
  EXPECT_EQ(f16_to_float(F16{0x8200}), -512.0f * q);
}

TEST(F16, EveryPatternRoundTrips) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const F16 h{static_cast<uint16_t>(b)};
    const float f = f16_to_float(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(f))));
      continue;
    }
    EXPECT_EQ(float_to_f16(f).bits, b) << b;
  }
}

#if defined(__FLT16_MAX__) && (defined(__x86_64__) || defined(__aarch64__))
TEST(F16, MatchesCompilerFloat16OnRandomBits) {
  // The compiler's _Float16 conversion is an independent oracle for rounding.
  std::mt19937 rng(11);
  for (int i = 0; i < 1000000; ++i) {
    const float f = bits_f(rng());
    if (std::isnan(f)) continue;
    const auto ref = std::bit_cast<uint16_t>(static_cast<_Float16>(f));
    ASSERT_EQ(float_to_f16(f).bits, ref) << f;
  }
}
#endif
