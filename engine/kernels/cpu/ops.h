// The element-wise and small kernels of the DeepSeek-V4 / V3 / Llama forward passes (spec §2.1–2.8):
// RMSNorm, interleaved tail RoPE with YaRN, softmax with an attention sink, clamped SwiGLU, router
// scoring and selection, Sinkhorn normalisation and top-k. All in FP32; each adds its work to the
// kElementwise counter when a context with counters is given.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/dtypes.h"
#include "engine/kernels/cpu/matmul.h"

namespace v4b {

// y[r] = w ⊙ x[r] / sqrt(mean(x[r]²) + eps) for `rows` rows of n; w == nullptr is the unweighted
// form (per-head query norm, mHC state). y may alias x.
void rms_norm(const KernelContext& ctx, const float* x, const float* w, float eps, int64_t n, int64_t rows, float* y);
void rms_norm(const KernelContext& ctx, const float* x, const Bf16* w, float eps, int64_t n, int64_t rows, float* y);

// YaRN frequency blending (spec §2.1.3): beta_fast / beta_slow bound the blended band of dims,
// factor divides the low frequencies. No attention-scale change.
struct YarnParams {
  double factor = 1;
  int64_t original_max_position = 0;
  double beta_fast = 32, beta_slow = 1;
};

// Rotation frequencies of `rope_dims` rotary dims (rope_dims / 2 pairs): theta_i = base^(-2i/rope_dims),
// blended by YaRN when given.
struct RopeTable {
  int64_t rope_dims = 0;
  std::vector<double> theta;  // per pair
  int64_t yarn_low = 0, yarn_high = 0;  // the blend band (for inspection); 0, 0 without YaRN
};
RopeTable make_rope_table(int64_t rope_dims, double base, const YarnParams* yarn = nullptr);

// Rotates pairs (x[off+2i], x[off+2i+1]) of each of `count` vectors (stride apart) by pos·theta_i;
// inverse rotates by -pos·theta_i. Angles are computed in double so large positions stay exact.
void rope_interleaved(const KernelContext& ctx, float* x, int64_t count, int64_t stride, int64_t off, const RopeTable& t,
                      int64_t pos, bool inverse = false);
// The half-split convention (pairs (x[off+i], x[off+i+R/2])), used by V3.2's indexer keys and Llama.
void rope_half(const KernelContext& ctx, float* x, int64_t count, int64_t stride, int64_t off, const RopeTable& t, int64_t pos,
               bool inverse = false);

// In place: p_j = exp(z_j) / (Σ exp(z_j') + exp(sink)); without a sink (sink = -inf) a plain softmax.
void softmax_with_sink(const KernelContext& ctx, float* z, int64_t n, float sink);

// h = silu(min(g, limit)) · clamp(u, -limit, limit); limit <= 0 disables the clamps (V3, Llama).
void swiglu(const KernelContext& ctx, const float* g, const float* u, int64_t n, float limit, float* h);

enum class RouterScoring { kSqrtSoftplus, kSigmoid, kSoftmax };

struct RouteParams {
  RouterScoring scoring = RouterScoring::kSqrtSoftplus;
  int top_k = 6;
  int n_group = 1, topk_group = 1;  // V3: 8 groups, keep the 4 with the largest sum of their top-2
  bool normalize = true;            // renormalise the selected affinities to sum 1
  double scale = 1;                 // routed_scaling_factor
};

struct Route {
  std::vector<int32_t> experts;  // ascending expert id
  std::vector<float> weights;    // per selected expert, same order
};

// Scores the router logits, picks experts by score + bias (bias may be null; it only steers the
// choice), and weighs them by the unbiased affinity. Ties go to the lower expert id.
Route route_experts(const KernelContext& ctx, const float* logits, int64_t n_experts, const float* bias, const RouteParams& p);
// Hash routing (V4 layers 0-2): fixed experts from tid2eid, weighted by their affinities.
Route route_fixed(const KernelContext& ctx, const float* logits, int64_t n_experts, std::span<const int64_t> experts,
                  const RouteParams& p);

// The mHC Sinkhorn of spec §2.3.2 on an n x n row-major matrix, in place: row softmax, + eps,
// column normalisation, then (iters - 1) x (row, column) normalisation, each dividing by sum + eps.
void sinkhorn(const KernelContext& ctx, float* c, int64_t n, int64_t iters, float eps);

// Indices of the k largest values (k clamped to n), ties to the lower index: by descending value,
// or (kByIndex, e.g. the indexer's picks, which are read in cache order) the same set ascending.
// -0 ties +0; NaNs rank below every number.
enum class TopKOrder { kByValue, kByIndex };
std::vector<int32_t> top_k(const KernelContext& ctx, const float* v, int64_t n, int64_t k, TopKOrder order = TopKOrder::kByValue);

// float -> activation helper used around the kernels.
float sqrt_softplus(float x);

}  // namespace v4b
