#include "engine/models/forward_util.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "engine/core/dtypes.h"
#include "common/errors.h"
#include "engine/core/qdq.h"
#include "engine/core/thread_pool.h"
#include "engine/kernels/cpu/ops.h"

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

WeightMatrix f32_matrix(const float* data, int64_t rows, int64_t cols) { return {WeightLayout::kF32, rows, cols, data, nullptr}; }

WeightMatrix bf16_matrix(const Bf16* data, int64_t rows, int64_t cols) { return {WeightLayout::kBf16, rows, cols, data, nullptr}; }

void check_tokens(std::span<const int32_t> tokens, int64_t vocab) {
  for (int32_t t : tokens)
    if (t < 0 || t >= vocab) throw UsageError(fmt::format("token id {} is outside the vocabulary (0..{})", t, vocab - 1));
}

std::vector<std::vector<int32_t>> index_select(const KernelContext& ctx, const KvRows& keys, const float* q, int64_t heads,
                                               const float* head_w, float wscale, std::span<const int64_t> visible,
                                               int64_t topk, bool exact_bf16, const IndexKeysInt8* keys8, bool bf16_scores) {
  const int64_t T = static_cast<int64_t>(visible.size()), dim = keys.format().dims, row_bytes = keys.format().row_bytes();
  const KernelContext quiet{ctx.pool, nullptr, ctx.isa};  // counted below, per query
  ThreadPool& pool = ctx.pool ? *ctx.pool : default_pool();
  // 64 queries x the heads keep the packed query panel of a pass in L2; decoding keys again per pass is cheap.
  constexpr int64_t kQueries = 64, kKeys = 4096;
  std::vector<std::vector<int32_t>> selected(T);
  std::vector<float> kb, dots, scores, w(T * heads);
  for (int64_t i = 0; i < T * heads; ++i) w[i] = head_w[i] * wscale;
  for (int64_t i0 = 0; i0 < T; i0 += kQueries) {
    const int64_t nq = std::min(kQueries, T - i0), rows = *std::max_element(visible.begin() + i0, visible.begin() + i0 + nq);
    const float* qb = q + i0 * heads * dim;
    const float* wb = w.data() + i0 * heads;
    scores.resize(nq * rows);
    const bool done = keys8 && index_scores_int8(quiet, qb, nq, heads, wb, *keys8, rows, scores.data(), rows, bf16_scores);
    for (int64_t r0 = 0; !done && r0 < rows; r0 += kKeys) {
      const int64_t n = std::min(kKeys, rows - r0);
      kb.resize(n * dim);
      pool.parallel_for(n, 256, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) keys.get(r0 + r, kb.data() + r * dim);
      });
      if (exact_bf16 && index_scores_bf16(quiet, qb, nq, heads, wb, kb.data(), n, dim, scores.data() + r0, rows, bf16_scores)) continue;
      dots.resize(nq * heads * n);
      if (exact_bf16) matmul_bf16_exact(quiet, FlopCategory::kIndexerScore, qb, nq * heads, kb.data(), n, dim, dots.data());
      else matmul(quiet, FlopCategory::kIndexerScore, qb, nq * heads, f32_matrix(kb.data(), n, dim), dots.data());
      pool.parallel_for(nq, 8, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          float* sc = scores.data() + i * rows + r0;
          std::fill_n(sc, n, 0.0f);
          for (int64_t h = 0; h < heads; ++h) {
            const float wh = wb[i * heads + h];
            const float* dh = dots.data() + (i * heads + h) * n;
            if (bf16_scores)
              for (int64_t r = 0; r < n; ++r) sc[r] += round_to_bf16(wh * round_to_bf16(std::max(dh[r], 0.0f)));
            else
              for (int64_t r = 0; r < n; ++r) sc[r] += wh * std::max(dh[r], 0.0f);
          }
        }
      });
    }
    pool.parallel_for(nq, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        float* sc = scores.data() + i * rows;
        if (bf16_scores) round_bf16(sc, visible[i0 + i]);
        selected[i0 + i] = top_k(ctx, sc, visible[i0 + i], topk, bf16_scores ? TopKOrder::kByValue : TopKOrder::kByIndex);
      }
    });
  }
  if (ctx.counters)
    for (int64_t v : visible) ctx.counters->add(FlopCategory::kIndexerScore, 2 * heads * dim * v, v * row_bytes);
  return selected;
}

}  // namespace v4b
