// Synthetic checkpoints for tests: tiny model configs and zero-filled safetensors files shaped
// exactly like a config's tensor inventory.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/models/tensor_inventory.h"

namespace v4b::test {

// A deepseek_v4 config.json small enough to write in full: 4 layers (SWA, CSA, HCA, CSA) + 1 MTP
// block, hidden 256, FP8 dense weights and FP4 experts, 1 hash-routed layer.
nlohmann::json tiny_v4_config();

// Writes `specs` to one .safetensors file, every tensor zero-filled.
void write_zero_checkpoint(const std::string& path, const std::vector<TensorSpec>& specs);

}  // namespace v4b::test
