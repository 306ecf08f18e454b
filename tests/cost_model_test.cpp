// The analytic model against the published figures and the per-term arithmetic of spec §3–§4.
#include <gtest/gtest.h>

#include "common/errors.h"
#include "engine/models/cost_model.h"
#include "engine/models/presets.h"

using namespace v4b;

namespace {
constexpr int64_t k1M = int64_t{1} << 20;
constexpr double kGiB = 1024.0 * 1024 * 1024;
const ModelConfig& preset(const char* name) {
  static std::map<std::string, ModelConfig> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, resolve_model(name)).first;
  return it->second;
}
}  // namespace

TEST(CostModel, RowBytesMatchProductionLayouts) {
  EXPECT_EQ(kv_row_bytes(preset("v4-pro"), KvKind::kCompressedCsa, KvFormat::kFp8), 584);
  EXPECT_EQ(kv_row_bytes(preset("v4-pro"), KvKind::kWindow, KvFormat::kFp8), 584);
  EXPECT_EQ(kv_row_bytes(preset("v4-pro"), KvKind::kIndexKeys, KvFormat::kFp8), 68);
  EXPECT_EQ(kv_row_bytes(preset("v4-pro"), KvKind::kCompressedHca, KvFormat::kBf16), 1024);
  EXPECT_EQ(kv_row_bytes(preset("v4-pro"), KvKind::kIndexKeys, KvFormat::kBf16), 256);
  EXPECT_EQ(kv_row_bytes(preset("v3.2"), KvKind::kMlaLatent, KvFormat::kFp8), 656);
  EXPECT_EQ(kv_row_bytes(preset("v3.2"), KvKind::kIndexKeys, KvFormat::kFp8), 132);
  EXPECT_EQ(kv_row_bytes(preset("v3.2"), KvKind::kMlaLatent, KvFormat::kBf16), 1152);
  EXPECT_EQ(kv_row_bytes(preset("v3"), KvKind::kIndexKeys, KvFormat::kFp8), 0);
  EXPECT_EQ(kv_row_bytes(preset("llama3-8b"), KvKind::kGqaKv, KvFormat::kBf16), 4096);
}

TEST(CostModel, KvPerTokenAt1MMatchesSpec) {
  // Spec §4.2: V3.2 61 x (656 + 132) = 48,068 B/token; V4-Pro about 5,036; V4-Flash about 3,514 + window.
  const double v32 = kv_bytes(preset("v3.2"), k1M, KvFormat::kFp8).cache() / double(k1M);
  const double pro = kv_bytes(preset("v4-pro"), k1M, KvFormat::kFp8).cache() / double(k1M);
  const double flash = kv_bytes(preset("v4-flash"), k1M, KvFormat::kFp8).cache() / double(k1M);
  EXPECT_DOUBLE_EQ(v32, 48068.0);
  EXPECT_NEAR(pro, 5036, 1.0);
  EXPECT_NEAR(flash, 3514 + 3.1, 1.0);
  EXPECT_NEAR(pro / v32, 0.105, 0.001);    // "about 10%"
  EXPECT_NEAR(flash / v32, 0.073, 0.001);  // "about 7%"
}

TEST(CostModel, KvTotalsMatchSpecTable) {
  // Spec §3.2 per-sequence totals in GiB.
  EXPECT_NEAR(kv_bytes(preset("v4-flash"), 131072, KvFormat::kFp8).cache() / kGiB, 0.432, 0.001);
  EXPECT_NEAR(kv_bytes(preset("v4-pro"), 131072, KvFormat::kFp8).cache() / kGiB, 0.618, 0.001);
  EXPECT_NEAR(kv_bytes(preset("v3.2"), 131072, KvFormat::kFp8).cache() / kGiB, 5.87, 0.005);
  EXPECT_NEAR(kv_bytes(preset("v4-flash"), k1M, KvFormat::kFp8).cache() / kGiB, 3.435, 0.001);
  EXPECT_NEAR(kv_bytes(preset("v4-pro"), k1M, KvFormat::kFp8).cache() / kGiB, 4.918, 0.001);
  EXPECT_NEAR(kv_bytes(preset("v3.2"), k1M, KvFormat::kFp8).cache() / kGiB, 46.94, 0.005);
  EXPECT_NEAR(kv_bytes(preset("v3"), k1M, KvFormat::kBf16).cache() / kGiB, 68.6, 0.05);  // 1152 B x 61 layers
  // All-BF16 variant (vLLM blog): Flash 6.72, Pro 9.625, V3.2 83.9 GiB.
  EXPECT_NEAR(kv_bytes(preset("v4-flash"), k1M, KvFormat::kBf16).cache() / kGiB, 6.72, 0.01);
  EXPECT_NEAR(kv_bytes(preset("v4-pro"), k1M, KvFormat::kBf16).cache() / kGiB, 9.625, 0.01);
  EXPECT_NEAR(kv_bytes(preset("v3.2"), k1M, KvFormat::kBf16).cache() / kGiB, 83.9, 0.05);
}

TEST(CostModel, KvKindsAtSmallContexts) {
  const ModelConfig& pro = preset("v4-pro");
  // 127 tokens: window only, no compressed row completed yet except CSA rows (31 of them).
  KvBytes b = kv_bytes(pro, 127, KvFormat::kFp8);
  EXPECT_EQ(b[KvKind::kWindow], 61 * 127 * 584);
  EXPECT_EQ(b[KvKind::kCompressedCsa], 30 * 31 * 584);
  EXPECT_EQ(b[KvKind::kIndexKeys], 30 * 31 * 68);
  EXPECT_EQ(b[KvKind::kCompressedHca], 0);
  b = kv_bytes(pro, 129, KvFormat::kFp8);
  EXPECT_EQ(b[KvKind::kWindow], 61 * 128 * 584);
  EXPECT_EQ(b[KvKind::kCompressedHca], 31 * 1 * 584);
  // Compressor state: Flash 11.6 MiB, Pro 17.8 MiB (spec §3.1), independent of context and format.
  EXPECT_NEAR(b[KvKind::kCompressorState] / 1048576.0, 17.84, 0.01);
  EXPECT_EQ(b[KvKind::kCompressorState], kv_bytes(pro, 1, KvFormat::kBf16)[KvKind::kCompressorState]);
  EXPECT_NEAR(kv_bytes(preset("v4-flash"), 1, KvFormat::kFp8)[KvKind::kCompressorState] / 1048576.0, 11.64, 0.01);
  EXPECT_EQ(b.total() - b.cache(), b[KvKind::kCompressorState]);
}

TEST(CostModel, GqaBaselineRatio) {
  // Spec §4.2: against BF16 GQA8 with 128-d heads at the same depth, V4 is about 2%.
  ModelConfig gqa = preset("llama3-8b");
  const double gqa_per_token_layer = kv_bytes(gqa, k1M, KvFormat::kBf16).cache() / double(k1M) / gqa.n_layers;
  EXPECT_DOUBLE_EQ(gqa_per_token_layer, 4096.0);
  const double pro = kv_bytes(preset("v4-pro"), k1M, KvFormat::kFp8).cache() / double(k1M);
  EXPECT_NEAR(pro / (61 * 4096.0), 0.0202, 0.0005);
}

TEST(CostModel, DecodeFlopTermsMatchSpecAt1M) {
  const DecodeFlops v32 = decode_flops(preset("v3.2"), k1M);
  const DecodeFlops pro = decode_flops(preset("v4-pro"), k1M);
  const DecodeFlops flash = decode_flops(preset("v4-flash"), k1M);
  auto g = [](const DecodeFlops& f, FlopCategory c) { return f[c] / 1e9; };
  auto small = [](const DecodeFlops& f) {
    return (f[FlopCategory::kRouter] + f[FlopCategory::kMhc] + f[FlopCategory::kCompressor] + f[FlopCategory::kSmallMatmul]) / 1e9;
  };
  // Spec §4.3 table (GFLOP per token).
  EXPECT_NEAR(g(v32, FlopCategory::kWeightGemm), 74.68, 0.01);
  EXPECT_NEAR(g(pro, FlopCategory::kWeightGemm), 95.61, 0.01);
  EXPECT_NEAR(g(flash, FlopCategory::kWeightGemm), 25.76, 0.01);
  EXPECT_NEAR(small(v32), 0.27, 0.005);
  EXPECT_NEAR(small(pro), 2.09, 0.01);
  EXPECT_NEAR(small(flash), 0.78, 0.005);
  EXPECT_NEAR(g(v32, FlopCategory::kAttentionCore), 34.80, 0.01);
  EXPECT_NEAR(g(pro, FlopCategory::kAttentionCore), 76.67, 0.01);
  EXPECT_NEAR(g(flash, FlopCategory::kAttentionCore), 23.61, 0.01);
  EXPECT_NEAR(g(v32, FlopCategory::kIndexerScore), 1047.97, 0.01);
  EXPECT_NEAR(g(pro, FlopCategory::kIndexerScore), 128.85, 0.01);
  EXPECT_NEAR(g(flash, FlopCategory::kIndexerScore), 90.19, 0.01);
  EXPECT_NEAR(v32.raw() / 1e9, 1157.7, 0.1);
  EXPECT_NEAR(pro.raw() / 1e9, 303.2, 0.1);
  EXPECT_NEAR(flash.raw() / 1e9, 140.3, 0.1);
}

TEST(CostModel, HeadlineFlopRatiosAt1M) {
  const DecodeFlops v32 = decode_flops(preset("v3.2"), k1M);
  const DecodeFlops pro = decode_flops(preset("v4-pro"), k1M);
  const DecodeFlops flash = decode_flops(preset("v4-flash"), k1M);
  EXPECT_NEAR(v32.fp8eq() / 1e9, 1192.8, 0.2);
  EXPECT_NEAR(pro.fp8eq() / 1e9, 317.6, 0.2);
  EXPECT_NEAR(flash.fp8eq() / 1e9, 119.6, 0.2);
  EXPECT_NEAR(pro.fp8eq() / v32.fp8eq(), 0.266, 0.001);     // "27%"
  EXPECT_NEAR(flash.fp8eq() / v32.fp8eq(), 0.100, 0.001);   // "10%"
  EXPECT_NEAR(double(pro.raw()) / v32.raw(), 0.262, 0.001);
  EXPECT_NEAR(double(flash.raw()) / v32.raw(), 0.121, 0.001);
}

TEST(CostModel, FlopRatioAgainstContextFollowsSpec) {
  // Spec §4.3: Pro 81% @4K, 52% @128K, 33% @512K; Flash 21%, 15%, 11% (FP8-equivalent).
  auto ratio = [](const char* m, int64_t s) {
    return decode_flops(preset(m), s).fp8eq() / decode_flops(preset("v3.2"), s).fp8eq();
  };
  EXPECT_NEAR(ratio("v4-pro", 4096), 0.81, 0.01);
  EXPECT_NEAR(ratio("v4-pro", 131072), 0.52, 0.01);
  EXPECT_NEAR(ratio("v4-pro", 524288), 0.33, 0.01);
  EXPECT_NEAR(ratio("v4-flash", 4096), 0.21, 0.01);
  EXPECT_NEAR(ratio("v4-flash", 131072), 0.15, 0.01);
  EXPECT_NEAR(ratio("v4-flash", 524288), 0.11, 0.01);
}

TEST(CostModel, ParamCountsMatchPublishedTotals) {
  auto B = [](int64_t n) { return n / 1e9; };
  const ParamCounts flash = param_counts(preset("v4-flash"));
  const ParamCounts pro = param_counts(preset("v4-pro"));
  const ParamCounts v32 = param_counts(preset("v3.2"));
  // Recount of spec §1.5, to 0.1%.
  EXPECT_NEAR(B(flash.total), 284.33, 0.3);
  EXPECT_NEAR(B(flash.total + flash.mtp), 290.94, 0.3);
  EXPECT_NEAR(B(pro.total), 1573.0, 1.5);
  EXPECT_NEAR(B(pro.total + pro.mtp), 1598.8, 1.5);
  EXPECT_NEAR(B(v32.total), 671.9, 0.7);
  EXPECT_NEAR(B(flash.active), 13.27, 0.02);
  EXPECT_NEAR(B(flash.active + flash.embedding), 13.80, 0.02);
  EXPECT_NEAR(B(pro.active), 48.85, 0.05);
  EXPECT_NEAR(B(v32.active), 37.5, 0.05);
  // Published totals within 1%: Flash 284B (trunk), Pro 1.6T (DeepSeek counts the MTP block here), V3.2 671B.
  EXPECT_NEAR(B(flash.total) / 284, 1.0, 0.01);
  EXPECT_NEAR(B(pro.total + pro.mtp) / 1600, 1.0, 0.01);
  EXPECT_NEAR(B(v32.total) / 671, 1.0, 0.01);
  // Published active counts are rounded to whole billions: 13B, 49B, 37B.
  EXPECT_NEAR(B(pro.active) / 49, 1.0, 0.01);
  EXPECT_EQ(std::lround(B(flash.active)), 13);
  EXPECT_EQ(std::lround(B(v32.active)), 37);
  // Llama 3.1: 8.03B and 70.55B.
  EXPECT_NEAR(B(param_counts(preset("llama3-8b")).total), 8.03, 0.01);
  EXPECT_NEAR(B(param_counts(preset("llama3-70b")).total), 70.55, 0.01);
}
