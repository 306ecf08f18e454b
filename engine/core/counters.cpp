#include "engine/core/counters.h"

namespace v4b {

std::string_view flop_category_name(FlopCategory c) {
  switch (c) {
    case FlopCategory::kWeightGemm: return "weight_gemm";
    case FlopCategory::kAttentionCore: return "attention_core";
    case FlopCategory::kIndexerScore: return "indexer_score";
    case FlopCategory::kCompressor: return "compressor";
    case FlopCategory::kRouter: return "router";
    case FlopCategory::kMhc: return "mhc";
    case FlopCategory::kSmallMatmul: return "small_matmul";
    case FlopCategory::kElementwise: return "elementwise";
    case FlopCategory::kCount: break;
  }
  return "?";
}

OpCount OpCounters::total() const {
  OpCount t;
  for (int i = 0; i < kNumFlopCategories; ++i) {
    const OpCount c = get(static_cast<FlopCategory>(i));
    t.flops += c.flops;
    t.bytes += c.bytes;
    t.calls += c.calls;
  }
  return t;
}

void OpCounters::reset() {
  for (auto& s : slots_) {
    s.flops.store(0, std::memory_order_relaxed);
    s.bytes.store(0, std::memory_order_relaxed);
    s.calls.store(0, std::memory_order_relaxed);
  }
}

}  // namespace v4b
