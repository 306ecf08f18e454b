#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "engine/core/dtypes.h"
#include "engine/core/qdq.h"

using namespace v4b;

namespace {
float p2(int k) { return std::ldexp(1.0f, k); }
}  // namespace

TEST(ActQuant, HandWorkedBlockAmax3) {
  // amax 3 -> 3/448 = 0.0067 -> s = 2^ceil(-7.22) = 2^-7, byte 120. x/s = 128 x.
  std::vector<float> x(128, 0.0f);
  x[0] = 3.0f;                 // 384 -> 0x7C
  x[1] = -3.0f;                // -> 0xFC
  x[2] = 1.0f;                 // 128 -> 0x70
  x[3] = 0.01f;                // 1.28 -> 1.25 -> 0x3A
  x[4] = 2.9f;                 // 371.2 -> 384 (step 32) -> 0x7C
  x[5] = 1.0625f / 128.0f;     // 1.0625: tie -> 1.0 (0x38)
  x[6] = 1.1875f / 128.0f;     // 1.1875: tie -> 1.25 (0x3A)
  x[7] = p2(-17);              // 2^-10: subnormal tie -> 0
  x[8] = 3.0f * p2(-17);       // 1.5 * 2^-9: tie -> 2 * 2^-9 (0x02)
  x[9] = -2.0f;                // -256 -> 0xF8
  x[127] = 0.5f;               // 64 = 2^6 -> exponent field 13 -> 0x68
  std::vector<uint8_t> codes(128), scales(1);
  act_quant(x, codes, scales);
  EXPECT_EQ(scales[0], 120);
  const uint8_t expect[] = {0x7C, 0xFC, 0x70, 0x3A, 0x7C, 0x38, 0x3A, 0x00, 0x02, 0xF8};
  for (size_t i = 0; i < std::size(expect); ++i) EXPECT_EQ(codes[i], expect[i]) << i;
  EXPECT_EQ(codes[127], 0x68);
  for (size_t i = 10; i < 127; ++i) EXPECT_EQ(codes[i], 0x00) << i;

  std::vector<float> back(128);
  act_dequant(codes, scales, back);
  EXPECT_EQ(back[0], 3.0f);
  EXPECT_EQ(back[3], 1.25f / 128.0f);
  EXPECT_EQ(back[4], 3.0f);
  EXPECT_EQ(back[8], 2.0f * p2(-16));
  EXPECT_EQ(back[9], -2.0f);
}

TEST(ActQuant, ScaleAtPowerOfTwoBoundaries) {
  auto scale_for = [](float amax) {
    std::vector<float> x(128, 0.0f);
    x[17] = amax;
    std::vector<uint8_t> codes(128), scales(1);
    act_quant(x, codes, scales);
    return std::pair{scales[0], codes[17]};
  };
  // amax = 448 * 2^k exactly gives s = 2^k and the value lands on code 448.
  EXPECT_EQ(scale_for(448.0f), (std::pair<uint8_t, uint8_t>{127, 0x7E}));
  EXPECT_EQ(scale_for(896.0f), (std::pair<uint8_t, uint8_t>{128, 0x7E}));
  EXPECT_EQ(scale_for(3.5f), (std::pair<uint8_t, uint8_t>{120, 0x7E}));  // 448 * 2^-7
  // One ulp above needs the next power: 448.00003 / 2 = 224 -> 0x76.
  EXPECT_EQ(scale_for(std::nextafter(448.0f, 1e9f)), (std::pair<uint8_t, uint8_t>{128, 0x76}));
  // amax = 1 -> 1/448 -> 2^-8; 1 * 256 = 256 -> 0x78.
  EXPECT_EQ(scale_for(1.0f), (std::pair<uint8_t, uint8_t>{119, 0x78}));
  EXPECT_EQ(e4m3_scale_exponent(448.0f * p2(-20)), -20);
  EXPECT_EQ(e4m3_scale_exponent(std::nextafter(448.0f * p2(-20), 0.0f)), -20);
  EXPECT_EQ(e4m3_scale_exponent(std::nextafter(448.0f * p2(-20), 1.0f)), -19);
}

TEST(ActQuant, AllZerosUseAmaxFloor) {
  // amax floored at 1e-4: 1e-4/448 = 2.23e-7 -> s = 2^-22, byte 105; every code is +0.
  std::vector<float> x(256, 0.0f);
  x[200] = 1e-9f;  // below the floor: the second block also uses 2^-22, 1e-9 * 2^22 = 0.0042 -> 2^-9 step -> code 2
  std::vector<uint8_t> codes(256), scales(2);
  act_quant(x, codes, scales);
  EXPECT_EQ(scales[0], 105);
  EXPECT_EQ(scales[1], 105);
  for (size_t i = 0; i < 256; ++i) EXPECT_EQ(codes[i], i == 200 ? 0x02 : 0x00) << i;
  EXPECT_EQ(e4m3_scale_exponent(0.0f), -22);
  EXPECT_EQ(e4m3_scale_exponent(1e-4f), -22);
}

TEST(ActQuant, ShortTailBlockAndNaN) {
  std::vector<float> x(130, 1.0f);
  x[129] = 100.0f;  // tail block amax 100 -> 100/448 -> 2^-2 -> 400 -> 0x7C (384, tie 400 to even)
  std::vector<uint8_t> codes(130), scales(2);
  act_quant(x, codes, scales);
  EXPECT_EQ(scales[0], 119);
  EXPECT_EQ(scales[1], 125);
  EXPECT_EQ(codes[129], 0x7C);
  EXPECT_EQ(codes[128], 0x48);  // 1 * 4 = 2^2 -> exponent field 9
  x[3] = std::numeric_limits<float>::quiet_NaN();
  act_quant(x, codes, scales);
  EXPECT_EQ(scales[0], kUe8m0NaN);
  EXPECT_EQ(codes[0], kE4m3NaN);
  EXPECT_EQ(scales[1], 125);
  std::vector<uint8_t> bad(3);
  EXPECT_THROW(act_quant(x, codes, bad), std::invalid_argument);
}

TEST(ActQuant, RandomRowsDequantWithinHalfStep) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> x(4096);
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> codes(x.size()), scales(x.size() / 128);
  act_quant(x, codes, scales);
  std::vector<float> back(x.size());
  act_dequant(codes, scales, back);
  for (size_t b = 0; b < scales.size(); ++b) {
    const float s = ue8m0_to_float(scales[b]);
    float amax = 0;
    for (size_t i = 0; i < 128; ++i) amax = std::max(amax, std::fabs(x[b * 128 + i]));
    EXPECT_GE(s * 448.0f, amax);  // the scale covers the block
    EXPECT_LT(s * 224.0f, amax);  // and is the smallest power that does
    for (size_t i = 0; i < 128; ++i) {
      const float v = x[b * 128 + i];
      // E4M3 keeps 3 mantissa bits: relative error <= 2^-4 for normals, absolute <= 2^-10 s below.
      EXPECT_LE(std::fabs(back[b * 128 + i] - v), std::max(std::fabs(v) * 0.0625f, s * p2(-10))) << v;
    }
  }
}

TEST(KvFp8Qdq, HandWorkedVector) {
  std::vector<float> kv(512, 0.0f);
  // Block 0 (dims 0..63): amax 3 -> s = 2^-7.
  kv[0] = 3.0f;
  kv[1] = 2.9f;      // -> 3.0
  kv[2] = 0.01f;     // -> 1.25 * 2^-7
  kv[63] = -1.0f;    // -> -1.0
  // Block 1 (64..127) all zero stays zero. Block 6 (384..447): amax 1000 -> 1000/448 = 2.23 -> s = 4.
  kv[384] = 1000.0f;  // 250 -> 256 -> 1024
  kv[447] = -10.0f;   // 2.5 -> 2.5 (0x42: 1.25*2) -> -10
  kv[400] = 1.0f;     // 0.25 -> exact -> 1
  kv[401] = 0.1f;     // 0.025: see below
  // RoPE dims stay as they are even though not representable in E4M3.
  for (size_t i = 448; i < 512; ++i) kv[i] = 1.2345f + static_cast<float>(i);
  std::vector<float> orig = kv;
  kv_fp8_qdq(kv);
  EXPECT_EQ(kv[0], 3.0f);
  EXPECT_EQ(kv[1], 3.0f);
  EXPECT_EQ(kv[2], 1.25f / 128.0f);
  EXPECT_EQ(kv[63], -1.0f);
  for (size_t i = 64; i < 128; ++i) EXPECT_EQ(kv[i], 0.0f);
  EXPECT_EQ(kv[384], 1024.0f);
  EXPECT_EQ(kv[447], -10.0f);
  EXPECT_EQ(kv[400], 1.0f);
  // 0.025 = 1.6 * 2^-6 -> normal binade step 2^-9: 0.025 * 512 = 12.8 -> 13 * 2^-9 = 0.025390625; times 4.
  EXPECT_EQ(kv[401], 4.0f * 13.0f * p2(-9));
  for (size_t i = 448; i < 512; ++i) EXPECT_EQ(kv[i], orig[i]) << i;
  // Idempotent: a second pass changes nothing.
  std::vector<float> again = kv;
  kv_fp8_qdq(again);
  EXPECT_EQ(again, kv);
}

TEST(Fp4Qdq, HandWorkedBlocks) {
  std::vector<float> x(96, 0.0f);
  // Block 0: amax 6 -> s = 1.
  const float in0[] = {6.0f, 0.3f, 0.25f, 0.75f, 2.6f, 5.0f, -5.5f, 1.25f, -1.75f};
  const float out0[] = {6.0f, 0.5f, 0.0f, 1.0f, 3.0f, 4.0f, -6.0f, 1.0f, -2.0f};
  for (size_t i = 0; i < std::size(in0); ++i) x[i] = in0[i];
  // Block 1: amax 3 -> 3/6 = 0.5 -> s = 2^-1.
  const float in1[] = {3.0f, 1.0f, 0.2f, -0.6f, 0.125f};
  const float out1[] = {3.0f, 1.0f, 0.25f, -0.5f, 0.0f};  // 0.2/0.5 = 0.4 -> 0.5; 0.125 -> 0.25 tie -> 0
  for (size_t i = 0; i < std::size(in1); ++i) x[32 + i] = in1[i];
  // Block 2: tiny values (float subnormals) fall under the floor 6 * 2^-126 -> s = 2^-126.
  x[64] = 1e-40f;  // 1e-40 * 2^126 = 0.0085 -> 0
  x[65] = 3.0f * p2(-127);  // 1.5 * 2^-126 -> /s = 1.5 -> 1.5 -> exact
  fp4_qdq(x);
  for (size_t i = 0; i < std::size(out0); ++i) EXPECT_EQ(x[i], out0[i]) << i;
  for (size_t i = std::size(out0); i < 32; ++i) EXPECT_EQ(x[i], 0.0f) << i;
  for (size_t i = 0; i < std::size(out1); ++i) EXPECT_EQ(x[32 + i], out1[i]) << i;
  EXPECT_EQ(x[64], 0.0f);
  EXPECT_EQ(x[65], 3.0f * p2(-127));
  EXPECT_EQ(e2m1_scale_exponent(0.0f), -126);
  EXPECT_EQ(e2m1_scale_exponent(6.0f), 0);
  EXPECT_EQ(e2m1_scale_exponent(std::nextafter(6.0f, 7.0f)), 1);
  std::vector<float> bad(33);
  EXPECT_THROW(fp4_qdq(bad), std::invalid_argument);
}

// fp4_qdq rounds by its own branch-free count: it must equal encoding each scaled value with
// float_to_e2m1 and decoding it, over random blocks and every midpoint (and its neighbours).
TEST(Fp4Qdq, EqualsEncodeDecodeOfEachValue) {
  std::mt19937 rng(3);
  std::vector<float> x;
  const float mids[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 0.0f};
  for (float m : mids)
    for (float v : {m, std::nextafter(m, 0.0f), std::nextafter(m, 7.0f)}) x.push_back(rng() % 2 ? v : -v);
  x.resize(32, 6.0f);  // block 0: amax 6, so its values meet the midpoints unscaled
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int i = 0; i < 32 * 200; ++i) x.push_back(std::ldexp(nd(rng), static_cast<int>(rng() % 40) - 20));
  std::vector<float> want = x;
  for (size_t lo = 0; lo < want.size(); lo += 32) {
    float amax = 0;
    for (size_t i = lo; i < lo + 32; ++i) amax = std::max(amax, std::fabs(want[i]));
    const float s = std::ldexp(1.0f, e2m1_scale_exponent(amax));
    for (size_t i = lo; i < lo + 32; ++i) want[i] = e2m1_to_float(float_to_e2m1(want[i] / s)) * s;
  }
  fp4_qdq(x);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(std::bit_cast<uint32_t>(x[i]), std::bit_cast<uint32_t>(want[i])) << i;
}

TEST(Fp4Qdq, NonFiniteBlockBecomesNaN) {
  std::vector<float> x(64, 1.0f);
  x[5] = std::numeric_limits<float>::infinity();
  fp4_qdq(x);
  EXPECT_TRUE(std::isnan(x[0]));
  EXPECT_TRUE(std::isnan(x[31]));
  EXPECT_EQ(x[32], 1.0f);
}

namespace {
std::vector<double> explicit_hadamard(const std::vector<float>& x) {
  // H[i][j] = (-1)^popcount(i & j) / sqrt(128): the Sylvester ordering, built independently.
  std::vector<double> y(128, 0.0);
  for (int i = 0; i < 128; ++i)
    for (int j = 0; j < 128; ++j)
      y[static_cast<size_t>(i)] += ((std::popcount(static_cast<unsigned>(i & j)) & 1) ? -1.0 : 1.0) * x[static_cast<size_t>(j)];
  for (auto& v : y) v /= std::sqrt(128.0);
  return y;
}
}  // namespace

TEST(Hadamard128, BasisVectorsAndConstants) {
  std::vector<float> e(128, 0.0f);
  e[0] = 1.0f;
  hadamard_128(e);
  for (float v : e) EXPECT_NEAR(v, 1.0 / std::sqrt(128.0), 1e-7);
  std::vector<float> ones(128, 1.0f);
  hadamard_128(ones);
  EXPECT_NEAR(ones[0], std::sqrt(128.0), 1e-5);
  for (size_t i = 1; i < 128; ++i) EXPECT_EQ(ones[i], 0.0f);
  // e_1 maps to row 1 of H: alternating signs.
  std::vector<float> e1(128, 0.0f);
  e1[1] = 1.0f;
  hadamard_128(e1);
  for (size_t i = 0; i < 128; ++i) EXPECT_NEAR(e1[i], (i & 1 ? -1.0 : 1.0) / std::sqrt(128.0), 1e-7);
}

TEST(Hadamard128, MatchesExplicitMatrixAndIsSelfInverse) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  std::vector<float> x(128 * 3);
  for (auto& v : x) v = ud(rng);
  const std::vector<float> orig = x;
  hadamard_128(x);
  for (size_t c = 0; c < 3; ++c) {
    const std::vector<float> chunk(orig.begin() + static_cast<long>(c * 128), orig.begin() + static_cast<long>(c * 128 + 128));
    const auto ref = explicit_hadamard(chunk);
    for (size_t i = 0; i < 128; ++i) EXPECT_NEAR(x[c * 128 + i], ref[i], 1e-5) << c << " " << i;
  }
  hadamard_128(x);  // H * H = I
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], orig[i], 1e-6) << i;
  std::vector<float> bad(100);
  EXPECT_THROW(hadamard_128(bad), std::invalid_argument);
}

TEST(ActQdq, EqualsActQuantThenDequantOnEveryRow) {
  // Rows of 300 values (two full blocks and a short one) spanning many binades, with values on
  // E4M3 ties, subnormal codes and the normal/subnormal boundary: the fast in-place QDQ the GEMMs
  // use must equal the byte-level act_quant followed by act_dequant.
  std::mt19937 rng(11);
  std::normal_distribution<float> n01;
  std::uniform_int_distribution<int> binade(-30, 12);
  const int64_t rows = 40, cols = 300;
  std::vector<float> x(rows * cols);
  for (float& v : x) v = n01(rng) * p2(binade(rng));
  x[5] = 448.0f;
  x[6] = 1.0625f * p2(-6) * 448.0f / 448.0f;  // a tie among the block's smaller values
  x[cols + 1] = 0.0f;
  x[2 * cols + 3] = -p2(-20);
  std::vector<float> got = x;
  act_qdq(got.data(), rows, cols);
  const size_t nb = (cols + 127) / 128;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<uint8_t> codes(cols), scales(nb);
    std::vector<float> want(cols);
    act_quant({x.data() + r * cols, static_cast<size_t>(cols)}, codes, scales);
    act_dequant(codes, scales, want);
    for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(got[r * cols + c], want[c]) << "row " << r << " col " << c << " x " << x[r * cols + c];
  }
  // Every result is exact in BF16 (what lets the BF16 dot products compute the official product).
  for (float v : got) EXPECT_EQ(v, bf16_to_float(float_to_bf16(v)));
}

TEST(ActQdq, NonFiniteBlockBecomesNaN) {
  std::vector<float> x(256, 1.0f);
  x[130] = std::numeric_limits<float>::infinity();
  act_qdq(x.data(), 1, 256);
  EXPECT_EQ(x[0], 1.0f);
  for (int i = 128; i < 256; ++i) EXPECT_TRUE(std::isnan(x[i])) << i;
}

TEST(RoundBf16, NearestEvenInPlace) {
  std::vector<float> x = {1.0f + p2(-8), 1.0f + 3 * p2(-8), 1.0f + p2(-8) + p2(-20), -(1.0f + p2(-8)), 0.0f};
  round_bf16(x.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(x[0], 1.0f);                  // tie -> even
  EXPECT_EQ(x[1], 1.0f + 4 * p2(-8));     // tie -> even (up)
  EXPECT_EQ(x[2], 1.0f + 2 * p2(-8));     // above the tie -> up
  EXPECT_EQ(x[3], -1.0f);
  EXPECT_EQ(x[4], 0.0f);
}
