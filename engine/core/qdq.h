// Block quantisation primitives of the V4 reference (spec §2.1.4–2.1.7): FP8 activation quant,
// KV FP8 quantise-dequantise, FP4 quantise-dequantise and the 128-point Hadamard rotation.
// Every block scale is a power of two computed exactly from the float's exponent, as the official
// kernels do with bit tricks, never through a rounded log2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace v4b {

inline constexpr size_t kActQuantBlock = 128;  // §2.1.4
inline constexpr size_t kKvQdqBlock = 64;      // §2.1.5
inline constexpr size_t kKvNopeDims = 448;     // §2.1.5: dims quantised; the 64 RoPE dims stay as is
inline constexpr size_t kFp4QdqBlock = 32;     // §2.1.6
inline constexpr size_t kHadamardSize = 128;   // §2.1.7
inline constexpr float kActAmaxFloor = 1e-4f;

// Exponent k of the block scale 2^k = 2^ceil(log2(amax / 448)), amax floored at 1e-4. Non-finite
// amax has no valid scale; callers treat it separately.
int e4m3_scale_exponent(float amax);
// Same for FP4: 2^ceil(log2(amax / 6)), amax floored at 6 * 2^-126.
int e2m1_scale_exponent(float amax);

// FP8 activation quantisation: for each 128-element block of x (the last may be shorter),
// codes[i] = e4m3(clamp(x[i] / s, ±448)) and scales[b] = UE8M0 byte of s.
// Sizes: codes.size() == x.size(), scales.size() == ceil(x.size() / 128).
// A block containing NaN or infinity gets scale byte 0xFF (NaN) and all codes NaN (0x7F).
void act_quant(std::span<const float> x, std::span<uint8_t> codes, std::span<uint8_t> scales);
// Inverse: out[i] = e4m3(codes[i]) * 2^(scale byte - 127); same size rules as act_quant.
void act_dequant(std::span<const uint8_t> codes, std::span<const uint8_t> scales, std::span<float> out);

// The official numerics' act_quant as the GEMM sees it (spec §7.7 d): each row of `cols` values
// quantised per 128-element block to E4M3 with its UE8M0 scale and multiplied back, in place. The
// results are exact in BF16, so a BF16-operand product of them with E4M3 / E2M1 weights computes
// the official block-scaled product-sum up to FP32 summation order. Non-finite blocks become NaN.
void act_qdq(float* x, int64_t rows, int64_t cols);

// x rounded to BF16 (nearest even) in place, kept as floats: where the official code holds a BF16 tensor.
void round_bf16(float* x, int64_t n);

// KV FP8 QDQ in place on dims 0..447 of one KV vector (size >= 448, normally 512), 7 blocks of 64:
// x <- e4m3(clamp(x / s, ±448)) * s. Dims 448.. are untouched.
void kv_fp8_qdq(std::span<float> kv);

// FP4 QDQ in place, blocks of 32 (x.size() must be a multiple of 32):
// x <- e2m1(clamp(x / s, ±6)) * s.
void fp4_qdq(std::span<float> x);

// Orthonormal Walsh–Hadamard transform (Sylvester order, scaled by 128^-1/2) applied in place to
// each consecutive 128-element chunk of x (x.size() must be a multiple of 128). Self-inverse.
void hadamard_128(std::span<float> x);

}  // namespace v4b
