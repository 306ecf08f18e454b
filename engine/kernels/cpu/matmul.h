// Products of activations with checkpoint weights in their stored formats, dequantised on the fly:
//   y[m][rows] = x[m][cols] · Wᵀ        (W is [rows = out features][cols = in features], row-major)
// Small m runs a weight-streaming GEMV; larger m packs dequantised weight panels for a register-
// blocked GEMM. AVX-512, AVX2 and portable code paths are chosen at run time (see cpu_features.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/counters.h"
#include "engine/core/dtypes.h"
#include "engine/kernels/cpu/cpu_features.h"

namespace v4b {

class ThreadPool;

enum class WeightLayout {
  kF32,
  kBf16,
  kFp8Ue8m0,  // E4M3 with one UE8M0 scale byte per 128x128 block: scales [ceil(rows/128)][ceil(cols/128)]
  kFp8F32,    // E4M3 with one float scale per 128x128 block (V3 weight_scale_inv, V4 Base checkpoints)
  kMxfp4,     // E2M1 packed two per byte (low nibble = even column): data [rows][cols/2], UE8M0 scales [rows][cols/32]
};

struct WeightMatrix {
  WeightLayout layout = WeightLayout::kF32;
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;
  const void* scales = nullptr;  // fp8 and mxfp4 only

  int64_t data_bytes() const;
  int64_t scale_bytes() const;
};

struct KernelContext {
  ThreadPool* pool = nullptr;       // nullptr: default_pool()
  OpCounters* counters = nullptr;   // nullptr: not counted
  CpuIsa isa = CpuIsa::kAuto;       // kAuto: the best this CPU supports
  // FP8, MXFP4 and BF16 weights meet activations rounded to BF16 (on every path, so GEMV and GEMM
  // still agree), which lets AVX512-BF16 CPUs use vdpbf16ps in the GEMV: about twice the FP8 and
  // MXFP4 throughput. V4's attention then rounds its queries and probabilities to BF16 too
  // (OnlineAttention::add_bf16), twice the FP32 rate there. Off by default: the rounding turns
  // last-bit differences into BF16 steps (spec §7.6), so prefill and decode then agree less closely.
  bool bf16_activations = false;
};

// Numerics: FP32 accumulation of exactly dequantised weights times the FP32 activations. With
// bf16_activations, all but FP32 weights meet BF16-rounded activations instead, and the AVX512-BF16
// FP8 kernel reads E4M3 subnormal codes (< 2^-6 of a block's unit) as zero.
// Throws std::invalid_argument for an inconsistent matrix (e.g. mxfp4 with cols not a multiple of 32).
void matmul(const KernelContext& ctx, FlopCategory category, const float* x, int64_t m, const WeightMatrix& w, float* y);
void matmul(const KernelContext& ctx, FlopCategory category, const Bf16* x, int64_t m, const WeightMatrix& w, float* y);

// One product of a matmul_group: y[m][w.rows] = x[m][w.cols] · Wᵀ, counted under `category`.
struct MatmulJob {
  FlopCategory category;
  const float* x;
  int64_t m;
  const WeightMatrix* w;
  float* y;
  // The official numerics' linear layers (spec §7.7 d): act_quant, the input quantised through
  // FP8 blocks of 128 per row first (act_qdq, in a copy shared by the jobs of one input); bf16_out,
  // the result rounded to BF16. Both want ctx.bf16_activations, so the product is the exact one.
  bool act_quant = false;
  bool bf16_out = false;
};
// Each job's product exactly as matmul() computes it, with those of few rows (decode) sharing one
// pass over the thread pool: a decode step's many small products then keep every core streaming
// weights instead of each paying for a dispatch and an uneven tail. Outputs must not overlap inputs.
void matmul_group(const KernelContext& ctx, std::span<const MatmulJob> jobs);

// y[m][n] = x[m][k] · b[n][k]ᵀ for FP32 matrices whose values are all exact in BF16 (e.g. FP4-quantised
// indexer queries and keys): products are then exact and sums FP32, as in matmul() up to the order
// of summation, and AVX512-BF16 CPUs run it with vdpbf16ps at twice the FP32 rate. Counted as matmul().
void matmul_bf16_exact(const KernelContext& ctx, FlopCategory category, const float* x, int64_t m, const float* b, int64_t n,
                       int64_t k, float* y);

// Lightning-indexer scores (spec §2.6) by BF16 dot products, for queries and keys exact in BF16 (V4's
// FP4-quantised ones): scores[i * ld + r] = sum over h of w[i * heads + h] * max(0, q[i][h] . keys[r]),
// for i < nq, r < n, heads summed in order; q is [nq][heads][k], keys [n][k]. The ReLU'd head dots
// are folded into the scores as they come out of registers. Returns false, touching nothing, where
// the CPU or the shape (heads a multiple of 8, k even, k <= 256) does not allow it. Not counted.
// bf16_steps (official numerics, spec §7.7 h): each head's dot and its weighted term are rounded to
// BF16 before they are summed (the caller rounds the sum).
bool index_scores_bf16(const KernelContext& ctx, const float* q, int64_t nq, int64_t heads, const float* w, const float* keys,
                       int64_t n, int64_t k, float* scores, int64_t ld, bool bf16_steps = false);

// The same scores from 8-bit integers, on AVX-512 VNNI CPUs, for queries and keys whose values
// are integers within ±127 times one power of two per row (V4's FP4-quantised ones after the
// Hadamard rotation: E2M1 codes are multiples of 0.5 up to 6, and a row's four block scales then
// lie within a factor 8 of each other almost always). Products and sums are then exact in int32,
// at twice the BF16 rate. The keys are kept as they come (IndexKeysInt8, e.g. beside a cache).
class IndexKeysInt8 {
 public:
  // Empty, for keys of k values (k a multiple of 4, at most 256).
  void reset(int64_t k);
  // Appends a key from FP32 values; one that is not such integers makes the set unusable (and
  // later keys are then only counted).
  void push_back(const float* row);
  bool usable() const { return usable_; }
  int64_t size() const { return n_; }
  int64_t dim() const { return k_; }
  const uint32_t* panels() const { return panels_.data(); }
  const float* scales() const { return scale_.data(); }

 private:
  int64_t n_ = 0, k_ = 0;
  bool usable_ = true;
  std::vector<uint32_t> panels_;  // [ceil(n/32)][k/4][32]: four bytes of (integer + 128) per dword
  std::vector<float> scale_;      // per key: its power of two
};
// Whether this CPU and shape allow index_scores_int8 at all (worth preparing keys for).
bool index_int8_supported(const KernelContext& ctx, int64_t heads, int64_t k);
// index_scores_bf16's scores of keys [0, n) (n <= keys.size()) from usable keys. False, touching
// nothing, where the CPU, the shape, the keys or a query row does not allow it. Not counted.
bool index_scores_int8(const KernelContext& ctx, const float* q, int64_t nq, int64_t heads, const float* w, const IndexKeysInt8& keys,
                       int64_t n, float* scores, int64_t ld, bool bf16_steps = false);

}  // namespace v4b
