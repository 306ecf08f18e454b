// DeepSeek-V3.2 (MLA + DSA lightning indexer) and DeepSeek-V3 / V3.1 (MLA over every token), spec §2.10.
#pragma once

#include <memory>

#include "engine/models/weight_store.h"
#include "engine/runtime/engine.h"

namespace v4b {

// For Family::kDeepSeekV32 and Family::kDeepSeekV3 configs.
std::unique_ptr<Engine> make_deepseek_v32_engine(const ModelConfig& m, const WeightStore& weights, const EngineOptions& opts);

}  // namespace v4b
