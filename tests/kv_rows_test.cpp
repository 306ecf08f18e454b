#include "engine/kv/kv_rows.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/core/dtypes.h"
#include "engine/core/qdq.h"

using namespace v4b;

// get_bf16 (the BF16 attention's read of a cache row) gives the bits of get() rounded to BF16, in
// both storage formats; for V4 rows, whose stored values are exact in BF16, that is get() itself.
TEST(KvRows, Bf16ReadEqualsRoundedDecode) {
  std::mt19937 rng(8);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t D = 512, R = 64;
  for (KvFormat format : {KvFormat::kBf16, KvFormat::kFp8}) {
    KvRows rows({RowCodec::kV4Kv, format, D, R});
    std::vector<float> x(D);
    for (int i = 0; i < 5; ++i) {
      for (float& v : x) v = std::ldexp(nd(rng), static_cast<int>(rng() % 12) - 6);
      kv_fp8_qdq(x);  // as V4 writes its rows: the nope dims QDQ'd, so the fp8 layout holds them exactly
      rows.append(x.data());
    }
    std::vector<float> f(D);
    std::vector<uint16_t> b(D);
    for (int64_t i = 0; i < rows.size(); ++i) {
      rows.get(i, f.data());
      rows.get_bf16(i, b.data());
      for (int64_t c = 0; c < D; ++c) {
        ASSERT_EQ(b[c], float_to_bf16(f[c]).bits) << "row " << i << " dim " << c;
        ASSERT_EQ(bf16_to_float(Bf16{b[c]}), f[c]) << "row " << i << " dim " << c << ": not exact in BF16";
      }
    }
  }
}
