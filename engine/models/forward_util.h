// Small helpers shared by the model forward passes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/kernels/cpu/matmul.h"

namespace v4b {

// Row `row` of a BF16 / F32 embedding table as FP32 (UsageError for other layouts).
void embedding_row(const WeightMatrix& embed, int64_t row, float* out);

// The whole matrix widened to FP32 [rows][cols] (FP8 blocks times their scale); for the few
// weights a model uses in another shape than y = x·Wᵀ (MLA's absorbed kv_b).
std::vector<float> dequantize(const WeightMatrix& w);

// A WeightMatrix view of FP32 data [rows][cols] (the data must outlive it).
WeightMatrix f32_matrix(const float* data, int64_t rows, int64_t cols);

// Throws UsageError for a token id outside [0, vocab).
void check_tokens(std::span<const int32_t> tokens, int64_t vocab);

}  // namespace v4b
