// An independent, plainly written double-precision DeepSeek-V4 forward pass, straight from
// ../shared/spec/deepseek-v4.md §2, for testing the engine. It shares nothing with engine/models:
// it reads the checkpoint itself, keeps every token's raw projections and recomputes compressed
// rows by pooling over that history (the engine keeps incremental partial-window state instead).
//
// Two numerics: kFp64 is the math of §2 in double throughout; kOfficial is what DeepSeek's own
// inference code computes (spec §7.7): still double arithmetic, but every value is rounded where
// the official code holds a BF16 tensor, FP8 activation quantisation runs in front of every FP8 /
// FP4 GEMM, index scores are BF16 and attention is the kernel's 64-entry online softmax.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace v4b::test {

enum class RefNumerics { kFp64, kOfficial };

// Logits [tokens.size()][vocab] after every token, in "native" (as designed) or "dense" attention
// (every raw row 0..t, no compressors), FP64 numerics.
std::vector<std::vector<double>> v4_reference_logits(const std::string& checkpoint_dir, const std::vector<int>& tokens, bool dense);
// The same in the chosen numerics.
std::vector<std::vector<double>> v4_reference_logits(const std::string& checkpoint_dir, const std::vector<int>& tokens, bool dense,
                                                     RefNumerics numerics);

// The official-numerics primitives (spec §7.7), exposed for their unit tests.
namespace ref_official {

// Round to nearest even BF16 (through FP32, where the official code's values live).
double bf16(double x);
// Smallest k with qmax * 2^k >= amax (amax > 0), exactly: the UE8M0 scale exponent of a block.
int scale_exponent(double amax, double qmax);
// act_quant, dequantised: per `block` elements s = 2^scale_exponent(max(amax, 1e-4), 448),
// x -> e4m3(clamp(x / s, ±448)) * s.
std::vector<double> act_quant(const std::vector<double>& x, int block = 128);
// Unweighted RMSNorm in BF16 arithmetic (§7.2): square, mean, + eps, rsqrt and the product each
// round to BF16.
std::vector<double> head_rmsnorm_bf16(const std::vector<double>& q, double eps);
// One head of the sparse attention kernel (§7.3): the list in blocks of 64 (nullptr = -1 entry),
// online softmax of FP32 scores (q·k)·scale, BF16 probabilities in the PV product, unrounded
// running sum, sink added last as exp(sink - max); result BF16.
std::vector<double> sparse_attention(const std::vector<double>& q, const std::vector<const std::vector<double>*>& list, double sink,
                                     double scale);
// Indices of the min(k, n) largest scores, largest first, ties to the lower index.
std::vector<int64_t> topk(const std::vector<double>& scores, int64_t k);

}  // namespace ref_official

}  // namespace v4b::test
