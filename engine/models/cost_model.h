// Analytic cost model: KV-cache bytes, decode FLOPs and parameter counts as pure functions of a
// ModelConfig, a context length and a storage format (spec §3–§4). The engine's own counters are
// held against these numbers in tests, so every definition here is exact and documented.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "engine/core/counters.h"
#include "engine/models/model_config.h"

namespace v4b {

// How KV entries are stored. kBf16 is the reference layout; kFp8 the production layouts:
// V4 584-byte rows (448 E4M3 + 7 UE8M0 scales + pad + 64 BF16 rope dims) and 68-byte FP4 index keys,
// V3.2 656-byte MLA rows (512 E4M3 + 4 FP32 scales + 64 BF16) and 132-byte FP8 index keys,
// GQA one byte per element (per-tensor scale, as vLLM's fp8 KV cache).
enum class KvFormat { kBf16, kFp8 };
std::string_view kv_format_name(KvFormat f);
KvFormat parse_kv_format(std::string_view text);  // "bf16" | "fp8"; throws UsageError

enum class KvKind { kWindow, kCompressedCsa, kCompressedHca, kIndexKeys, kMlaLatent, kGqaKv, kCompressorState, kCount };
inline constexpr int kNumKvKinds = static_cast<int>(KvKind::kCount);
std::string_view kv_kind_name(KvKind k);  // window, compressed_csa, ...

struct KvBytes {
  std::array<int64_t, kNumKvKinds> by_kind{};
  int64_t operator[](KvKind k) const { return by_kind[static_cast<int>(k)]; }
  int64_t& operator[](KvKind k) { return by_kind[static_cast<int>(k)]; }
  // The cache proper: everything but the fixed-size compressor state (the report's definition).
  int64_t cache() const { return total() - (*this)[KvKind::kCompressorState]; }
  int64_t total() const;
};

// Per-sequence bytes of the main trunk's caches after `ctx` tokens (the MTP block is not included).
// Compressor state is the reference FP32 partial-window buffers, the same in both formats.
KvBytes kv_bytes(const ModelConfig& m, int64_t ctx, KvFormat format);
// Bytes of one row of each kind (0 where the model has no such kind).
int64_t kv_row_bytes(const ModelConfig& m, KvKind kind, KvFormat format);

struct DecodeFlops {
  std::array<int64_t, kNumFlopCategories> by_category{};
  std::array<double, kNumFlopCategories> fp8eq_weight{};  // multiplier per category (see fp8eq())
  int64_t operator[](FlopCategory c) const { return by_category[static_cast<int>(c)]; }
  int64_t& operator[](FlopCategory c) { return by_category[static_cast<int>(c)]; }
  int64_t raw() const;
  // "Equivalent FP8" FLOPs (spec §4.3): FP8 and FP4-weight GEMMs x1, BF16/FP32 work x2 (half the
  // FP8 peak), FP4 indexer scoring x0.5 (twice the FP8 peak). The report's convention, made explicit.
  double fp8eq() const;
};

// FLOPs (2 per multiply-add) of the decode step that appends the ctx-th token (position ctx-1), so
// the attention sees exactly the cache that kv_bytes(m, ctx) describes. Element-wise work (norms,
// RoPE, softmax, pooling, top-k) is not counted.
DecodeFlops decode_flops(const ModelConfig& m, int64_t ctx);

struct ParamCounts {
  int64_t total = 0;      // main trunk incl. embedding and head, excl. the MTP block
  int64_t mtp = 0;        // the MTP block(s); shares embedding and head with the trunk
  int64_t active = 0;     // per token in the trunk, excl. the input embedding (how DeepSeek quotes it)
  int64_t embedding = 0;  // input embedding
};
ParamCounts param_counts(const ModelConfig& m);

}  // namespace v4b
