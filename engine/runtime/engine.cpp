#include "engine/runtime/engine.h"

#include <filesystem>

#include <fmt/format.h>

#include "common/errors.h"
#include "engine/io/safetensors.h"
#include "engine/models/dense_gqa.h"
#include "engine/models/deepseek_v32.h"
#include "engine/models/deepseek_v4.h"
#include "engine/models/weights_binder.h"
#include "engine/synth/synth.h"

namespace v4b {

std::string_view attention_mode_name(AttentionMode m) {
  switch (m) {
    case AttentionMode::kNative: return "native";
    case AttentionMode::kDense: return "dense";
    case AttentionMode::kWindow: return "window";
  }
  return "?";
}

AttentionMode parse_attention_mode(std::string_view text) {
  if (text == "native") return AttentionMode::kNative;
  if (text == "dense") return AttentionMode::kDense;
  if (text == "window") return AttentionMode::kWindow;
  throw UsageError(fmt::format("invalid attention mode '{}': expected native, dense or window", text));
}

std::string_view numerics_name(Numerics n) {
  switch (n) {
    case Numerics::kModelDefault: return "default";
    case Numerics::kFp32: return "fp32";
    case Numerics::kOfficial: return "official";
  }
  return "?";
}

Numerics parse_numerics(std::string_view text) {
  if (text == "fp32") return Numerics::kFp32;
  if (text == "official") return Numerics::kOfficial;
  throw UsageError(fmt::format("invalid numerics '{}': expected official or fp32", text));
}

bool has_official_numerics(const ModelConfig& m) { return m.family == Family::kDeepSeekV4 || m.family == Family::kDeepSeekV32; }

Numerics resolve_numerics(const ModelConfig& m, Numerics requested) {
  // Official is the default for DeepSeek-V4 alone; V3.2 has it on request.
  if (requested == Numerics::kModelDefault) return m.family == Family::kDeepSeekV4 ? Numerics::kOfficial : Numerics::kFp32;
  if (requested == Numerics::kOfficial && !has_official_numerics(m))
    throw UsageError(fmt::format("official numerics are defined for DeepSeek-V4 and DeepSeek-V3.2 checkpoints only, not for {} "
                                 "(use --numerics fp32)",
                                 family_name(m.family)));
  return requested;
}

std::unique_ptr<Engine> Engine::load(const std::string& dir, const EngineOptions& opts) {
  if (!std::filesystem::is_directory(dir)) throw UsageError(fmt::format("'{}' is not a checkpoint directory", dir));
  const ModelConfig m = load_model_config(dir);
  auto ckpt = std::make_shared<const CheckpointReader>(dir);
  check_checkpoint(m, *ckpt);  // every tensor's name, dtype and shape before any compute
  const WeightStore weights(ckpt);
  switch (m.family) {
    case Family::kDeepSeekV4: return make_deepseek_v4_engine(m, weights, opts);
    case Family::kDeepSeekV32:
    case Family::kDeepSeekV3: return make_deepseek_v32_engine(m, weights, opts);
    case Family::kDenseGqa: return make_dense_gqa_engine(m, weights, opts);
  }
  throw UsageError(fmt::format("the engine does not run {} models", family_name(m.family)));
}

std::unique_ptr<Engine> Engine::open(const std::string& model, const EngineOptions& opts, uint64_t seed) {
  if (std::filesystem::is_directory(model)) return load(model, opts);
  return load(synthetic_model_dir(model, seed), opts);
}

}  // namespace v4b
