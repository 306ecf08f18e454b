// Seeded synthetic checkpoints in the official tensor layout (names, dtypes, shapes of
// engine/models/tensor_inventory.h): FP8 weights with UE8M0 128x128 block scales, FP4 experts with
// UE8M0 scales per 32, tid2eid hash tables. Values are random but scaled so activations stay
// finite at any depth: projections N(0, 1/fan_in), residual-branch outputs (wo_b, w2) shrunk so the
// mHC / residual streams dominate (spec §7.6), norms at one.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace v4b {

// Writes DIR/config.json and DIR/model.safetensors (atomically: a crash leaves no half checkpoint).
void write_synthetic_checkpoint(const nlohmann::json& config, const std::string& dir, uint64_t seed);

// A synthetic preset's checkpoint directory, synthesised on first use and cached under
// $V4BENCH_CACHE_DIR/models/NAME-seedS (see host.h for the cache root). Throws UsageError for a
// name that is not a synthetic preset.
std::string synthetic_model_dir(const std::string& preset, uint64_t seed = 0);

}  // namespace v4b
