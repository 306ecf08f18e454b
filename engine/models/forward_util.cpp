#include "engine/models/forward_util.h"

#include <cstring>

#include <fmt/format.h>

#include "engine/core/dtypes.h"
#include "engine/core/errors.h"

namespace v4b {

void embedding_row(const WeightMatrix& embed, int64_t row, float* out) {
  const int64_t d = embed.cols;
  switch (embed.layout) {
    case WeightLayout::kBf16: {
      const auto* p = static_cast<const uint8_t*>(embed.data) + row * d * 2;
      for (int64_t c = 0; c < d; ++c) {
        uint16_t b;
        std::memcpy(&b, p + 2 * c, 2);  // safetensors data is only 8-byte aligned per file
        out[c] = bf16_to_float(Bf16{b});
      }
      return;
    }
    case WeightLayout::kF32: std::memcpy(out, static_cast<const uint8_t*>(embed.data) + row * d * 4, d * 4); return;
    default: throw UsageError("the embedding table must be BF16 or F32");
  }
}

std::vector<float> dequantize(const WeightMatrix& w) {
  const int64_t R = w.rows, C = w.cols, cb = (C + 127) / 128;
  std::vector<float> out(R * C);
  const auto* d = static_cast<const uint8_t*>(w.data);
  const auto* s = static_cast<const uint8_t*>(w.scales);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c, blk = (r / 128) * cb + c / 128;
      switch (w.layout) {
        case WeightLayout::kF32: std::memcpy(&out[i], d + 4 * i, 4); break;
        case WeightLayout::kBf16: {
          uint16_t b;
          std::memcpy(&b, d + 2 * i, 2);
          out[i] = bf16_to_float(Bf16{b});
          break;
        }
        case WeightLayout::kFp8F32: {
          float sc;
          std::memcpy(&sc, s + 4 * blk, 4);
          out[i] = e4m3_to_float(d[i]) * sc;
          break;
        }
        case WeightLayout::kFp8Ue8m0: out[i] = e4m3_to_float(d[i]) * ue8m0_to_float(s[blk]); break;
        case WeightLayout::kMxfp4: throw UsageError("dequantize: FP4 matrices are not supported here");
      }
    }
  return out;
}

WeightMatrix f32_matrix(const float* data, int64_t rows, int64_t cols) {
  WeightMatrix w;
  w.layout = WeightLayout::kF32;
  w.rows = rows;
  w.cols = cols;
  w.data = data;
  return w;
}

void check_tokens(std::span<const int32_t> tokens, int64_t vocab) {
  for (int32_t t : tokens)
    if (t < 0 || t >= vocab) throw UsageError(fmt::format("token id {} is outside the vocabulary (0..{})", t, vocab - 1));
}

std::span<const float> head_logits(const KernelContext& ctx, const WeightMatrix& head, const float* h, int64_t rows,
                                   std::vector<float>& last, std::vector<float>* all) {
  std::vector<float> out(rows * head.rows);
  matmul(ctx, FlopCategory::kWeightGemm, h, rows, head, out.data());
  last.assign(out.end() - head.rows, out.end());
  if (all) *all = std::move(out);
  return last;
}

}  // namespace v4b
