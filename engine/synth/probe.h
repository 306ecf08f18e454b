// Recall probes: hand-built weights with a known ground truth. `v4-probe` is a DeepSeek-V4-shaped
// model (mHC, shared-KV MQA with tail RoPE, a window layer and a CSA layer with compressor and
// lightning indexer, MoE) whose weights implement 3-gram induction: it continues any token
// sequence that occurred earlier in its context with the token that followed it there. Under
// dense attention it therefore repeats a needle's value after the needle's lead-in at any
// distance; the window and compressed paths show what they lose.
//
// How the weights are built (k = 64 code dims per token, hidden 384, head_dim 320, 3 heads):
//  * Every token id v has a code c(v) in {+1,-1}^64 from a hash of v. The embedding writes c(v) into
//    residual slot A (dims 0-63) and a constant 1 into dim 320. mHC is neutral: zero mixing
//    projections, so pre/post weights are constants, Sinkhorn of a zero matrix is uniform (doubly
//    stochastic, so identical streams stay identical) and each block adds its output once. Every
//    FFN's down projections are zero: the MoE is routed and run but adds nothing.
//  * Layer 0 (sliding window): the KV row holds c(token) in its no-RoPE dims and a constant in its
//    RoPE dims. Head h's query is constant, with each RoPE pair pre-rotated by (h+1)*theta_i, so its
//    score peaks at relative offset h+1 (margin >= 1.08 per unit over all offsets up to 1M, scaled
//    to ~43 nats). Heads 0-2 copy c(t-1), c(t-2), c(t-3) into residual slots B, C, D.
//  * Layer 1 (CSA): the key at position s is [c(s-1), c(s-2), c(s-3)] (slots B-D), the value the
//    same shared row's slot A, c(s); the query at t is [c(t), c(t-1), c(t-2)]. A full 3-gram match
//    outscores a 2-gram match by ~26 nats. Head 0 writes the copied c(s) into slot E (dims 256-319).
//  * The output head reads slot E only: the logit of v is 64 * cos(c(v), slot E), so the copied
//    token wins by tens of nats over any other id.
//  * Native attention (layer 1's compressed path): both compressor lanes reuse the KV projection
//    with zero gates, i.e. every compressed row is the normalised mean of 8 overlapping tokens' rows;
//    the indexer scores a compressed row by the summed codes of its n-grams against the summed codes
//    of the query's n-gram. Mean pooling keeps which block held the needle but blurs which of its
//    tokens followed the lead-in; what native attention recovers is what the recall suite measures.
//
// `gqa-probe` is the same circuit in a Llama-style model (2 layers, 3 query heads, 1 KV head, head
// dim 384). Llama rotates every head dim, so the RoPE base is 1e14: pairs 0-31 turn fast enough to
// find offsets 1-3 (margin >= 1.67 per unit up to 1M tokens), pairs 96-191 turn by at most 1e-7 rad
// per token, i.e. stay put over any context, and carry the 3-gram codes; V is its own projection.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/models/model_config.h"
#include "engine/models/tensor_inventory.h"

namespace v4b {

// The config.json key that asks v4bench synth for probe weights instead of random ones; the
// v4-probe preset (engine/models/presets.cpp) sets it to kProbeWeights.
inline constexpr const char* kSynthWeightsKey = "synthetic_weights";
inline constexpr const char* kProbeWeights = "ngram-induction-probe";
bool is_probe_config(const nlohmann::json& config);

// The stored bytes of every tensor in `specs` for the probe. Throws UsageError when `m` does not
// have the probe's layout.
std::map<std::string, std::vector<uint8_t>> probe_tensor_bytes(const ModelConfig& m, const std::vector<TensorSpec>& specs);

// The probe's code of a token: bit j of the result is +1 (set) or -1 (clear) in code dim j.
uint64_t probe_code_bits(int64_t token);

}  // namespace v4b
