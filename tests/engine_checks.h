// The timeline invariants every model family must keep, as reusable checks on a checkpoint
// directory (synthetic tiny presets in the tests), plus small logit helpers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/models/cost_model.h"
#include "engine/runtime/engine.h"

namespace v4b::test {

// n seeded token ids below `vocab`.
std::vector<int32_t> tokens(int64_t n, uint32_t seed, int64_t vocab = 512);
std::vector<float> copy(std::span<const float> s);
double max_abs(std::span<const float> a);
double max_abs_diff(std::span<const float> a, std::span<const float> b);

// Decode and prefill in each chunk size reproduce one-shot prefill logits within 2e-3 (1 + max|logit|)
// (official numerics: mean KL below 1e-3 nats and 95% top-1 agreement; see PathAgreement).
void expect_chunked_prefill_matches(const std::string& dir, int64_t n, const std::vector<int64_t>& chunks, uint32_t seed,
                                    Numerics numerics = Numerics::kModelDefault);
// A snapshot after n1 tokens, then n2 more, restored and replayed: bit-identical logits; reset empties.
void expect_snapshot_restore_identical(const std::string& dir, KvFormat format, int64_t n1, int64_t n2);
// 1 and 2 threads give bit-identical logits after n tokens.
void expect_thread_counts_agree(const std::string& dir, int64_t n, Numerics numerics = Numerics::kModelDefault);
// Session KV bytes equal the analytic model exactly, per kind and format, after each length.
void expect_kv_bytes_exact(const std::string& dir, const std::vector<int64_t>& lengths);
// Engine::step over several sessions at different positions (decodes, a prompt chunk and a fresh
// session in one pass) gives each session the logits it gets alone, within 2e-3 (1 + max|logit|),
// splits the shared counted work so the sessions' weight FLOPs add up to their own, and refuses a
// session given twice, one from another engine and mixed attention modes or arithmetics without
// changing any (official numerics: agreement as in expect_chunked_prefill_matches).
void expect_batched_step_matches(const std::string& dir, AttentionMode mode, Numerics numerics = Numerics::kModelDefault);
// The counters of one decode step at position ctx - 1 are within 1% of the analytic decode FLOPs.
void expect_decode_flops_match(const std::string& dir, int64_t ctx);

}  // namespace v4b::test
