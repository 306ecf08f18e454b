// Llama-style dense models with grouped-query attention (Llama 3, Mistral, Qwen2 layouts).
#pragma once

#include <memory>

#include "engine/models/weight_store.h"
#include "engine/runtime/engine.h"

namespace v4b {

// For Family::kDenseGqa configs.
std::unique_ptr<Engine> make_dense_gqa_engine(const ModelConfig& m, const WeightStore& weights, const EngineOptions& opts);

}  // namespace v4b
