// DeepSeek-V4 (Flash / Pro and the synthetic presets of the same architecture), spec §2.
#pragma once

#include <memory>

#include "engine/models/weight_store.h"
#include "engine/runtime/engine.h"

namespace v4b {

std::unique_ptr<Engine> make_deepseek_v4_engine(const ModelConfig& m, const WeightStore& weights, const EngineOptions& opts);

}  // namespace v4b
