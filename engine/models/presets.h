// Built-in model presets: the published config.json of each model, parsed by the same code as a
// checkpoint's own config, so a preset and a checkpoint directory are interchangeable.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/models/model_config.h"

namespace v4b {

struct PresetInfo {
  std::string name;
  std::string description;
};

const std::vector<PresetInfo>& preset_list();
// The config.json object of a preset; throws UsageError listing the known presets.
nlohmann::json preset_config_json(const std::string& name);
// A preset name or a path to a checkpoint directory / config.json file.
ModelConfig resolve_model(const std::string& name_or_path);

}  // namespace v4b
