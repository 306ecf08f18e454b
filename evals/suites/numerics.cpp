#include "evals/suites/numerics.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "common/errors.h"
#include "engine/models/presets.h"

namespace v4b::evals {

Numerics requested_numerics(const std::string& text, std::string_view flag) {
  if (text.empty()) return Numerics::kModelDefault;
  try {
    return parse_numerics(text);
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("{}: {}", flag, e.what()));
  }
}

Numerics resolve_numerics_flag(const ModelConfig& m, const std::string& model, const std::string& text, std::string_view flag) {
  const Numerics requested = requested_numerics(text, flag);
  try {
    return resolve_numerics(m, requested);
  } catch (const UsageError& e) {
    // The engine's message suggests `--numerics fp32`; name the flag this command has.
    std::string what = e.what();
    if (flag != "--numerics")
      for (size_t at = what.find("--numerics "); at != std::string::npos; at = what.find("--numerics ", at + flag.size()))
        what.replace(at, 10, flag);
    throw UsageError(fmt::format("{} {} for {}: {}", flag, text, model, what));
  }
}

std::string resolved_numerics_name(const std::string& model, const std::string& text, std::string_view flag) {
  return std::string(numerics_name(resolve_numerics_flag(resolve_model(model), model, text, flag)));
}

std::string stored_numerics(const nlohmann::json& params, const char* key) {
  if (!params.is_object() || !params.contains(key)) return "fp32";
  const nlohmann::json& v = params.at(key);
  if (!v.is_string()) throw UsageError(fmt::format("stored parameter '{}' is not a string: {}", key, v.dump()));
  return v.get<std::string>();
}

}  // namespace v4b::evals
