// The --numerics flags of the engine-backed commands and suites (engine/runtime/engine.h:
// Numerics). What the user types ("" when the flag is absent: the model's default, "fp32" or
// "official") is resolved per model before anything runs or is stored, so a run's parameters always
// name what its sessions computed ("fp32" or "official", never "default"). Which families have
// official numerics is the engine's to say (has_official_numerics / resolve_numerics).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/models/model_config.h"
#include "engine/runtime/engine.h"

namespace v4b::evals {

// The help line of every --numerics flag.
inline constexpr const char* kNumericsHelp =
    "official (as DeepSeek's inference code: BF16, FP8-quantised GEMM inputs) or fp32; "
    "default: official for DeepSeek-V4 checkpoints, fp32 otherwise";

// "" -> kModelDefault, else parse_numerics; a bad value is a UsageError naming `flag`.
Numerics requested_numerics(const std::string& text, std::string_view flag = "--numerics");

// What a session of `model` (config `m`) runs for the flag's text: kFp32 or kOfficial. UsageError
// (one line, naming the flag and the model) for an unknown value or official on a family without it.
Numerics resolve_numerics_flag(const ModelConfig& m, const std::string& model, const std::string& text,
                               std::string_view flag = "--numerics");
// The same by name ("fp32" | "official"), resolving the model by name or checkpoint directory.
std::string resolved_numerics_name(const std::string& model, const std::string& text, std::string_view flag = "--numerics");

// A stored parameter read back: params[key] ("fp32" | "official"). Runs stored before numerics
// existed have no such key and ran FP32 activations: "fp32".
std::string stored_numerics(const nlohmann::json& params, const char* key = "numerics");

}  // namespace v4b::evals
