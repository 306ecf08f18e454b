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

std::string numerics_summary(const nlohmann::json& p) {
  if (!p.is_object()) return "";
  auto text = [](const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    std::string out;
    if (v.is_array())
      for (const auto& x : v) {
        if (!out.empty()) out += ',';
        out += x.is_string() ? x.get<std::string>() : x.dump();
      }
    return out.empty() ? v.dump() : out;
  };
  std::string out;
  if (p.contains("numerics")) {
    const nlohmann::json& n = p.at("numerics");
    if (!n.is_object()) return text(n);
    // In the run's model order where it has one (a JSON object's keys are sorted).
    std::vector<std::string> models;
    if (p.contains("models") && p.at("models").is_array())
      for (const auto& m : p.at("models"))
        if (m.is_string() && n.contains(m.get<std::string>()) &&
            std::find(models.begin(), models.end(), m.get<std::string>()) == models.end())
          models.push_back(m.get<std::string>());
    for (const auto& [model, v] : n.items())
      if (std::find(models.begin(), models.end(), model) == models.end()) models.push_back(model);
    for (const auto& model : models) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", model, text(n.at(model)));
    return out;
  }
  if (p.contains("base_numerics")) out = "base " + text(p.at("base_numerics"));
  if (p.contains("cand_numerics_list")) {
    if (!out.empty()) out += ", ";
    out += "candidate " + text(p.at("cand_numerics_list"));
  }
  return out;
}

}  // namespace v4b::evals
