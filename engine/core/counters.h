// Work counters: every kernel adds the FLOPs (2 per multiply-add) and bytes it moves to one
// category, so a session can report what a forward pass actually did and tests can hold it against
// the analytic model (engine/models/cost_model.h uses the same categories).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace v4b {

enum class FlopCategory {
  kWeightGemm,     // FP8 / FP4 / BF16 weight projections, experts and the LM head
  kAttentionCore,  // QK and PV over the attended entries
  kIndexerScore,   // lightning indexer scoring of every visible (compressed) row
  kCompressor,     // compressor projections (main and indexer compressors)
  kRouter,         // MoE router logits
  kMhc,            // mHC mixing projections
  kSmallMatmul,    // other small BF16 matmuls (indexer head weights)
  kElementwise,    // norms, RoPE, softmax, activations, pooling, top-k: not in the analytic model
  kCount
};
inline constexpr int kNumFlopCategories = static_cast<int>(FlopCategory::kCount);
std::string_view flop_category_name(FlopCategory c);  // weight_gemm, attention_core, ...

// Totals of one category.
struct OpCount {
  int64_t flops = 0;
  int64_t bytes = 0;  // bytes read from weights, activations and caches plus bytes written
  int64_t calls = 0;
};

// Thread-safe accumulation (kernels add once per call, after their parallel loop).
class OpCounters {
 public:
  void add(FlopCategory c, int64_t flops, int64_t bytes) {
    auto& s = slots_[static_cast<int>(c)];
    s.flops.fetch_add(flops, std::memory_order_relaxed);
    s.bytes.fetch_add(bytes, std::memory_order_relaxed);
    s.calls.fetch_add(1, std::memory_order_relaxed);
  }
  OpCount get(FlopCategory c) const {
    const auto& s = slots_[static_cast<int>(c)];
    return {s.flops.load(std::memory_order_relaxed), s.bytes.load(std::memory_order_relaxed),
            s.calls.load(std::memory_order_relaxed)};
  }
  OpCount total() const;
  void reset();

 private:
  struct Slot {
    std::atomic<int64_t> flops{0}, bytes{0}, calls{0};
  };
  std::array<Slot, kNumFlopCategories> slots_;
};

}  // namespace v4b
