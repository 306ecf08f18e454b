#include "evals/suites/engine_suite_params.h"

#include <fmt/format.h>

#include "common/errors.h"
#include "common/units.h"
#include "engine/models/presets.h"
#include "evals/suites/numerics.h"

namespace v4b::evals {

nlohmann::json engine_suite_params(const std::string& models, const std::string& baseline, const std::string& ctx,
                                   const std::string& numerics) {
  nlohmann::json p = {{"models", parse_name_list(models, "model")}, {"baseline", baseline}, {"ctx", parse_size_list(ctx, "context length")}};
  nlohmann::json resolved = nlohmann::json::object();
  for (const auto& m : p["models"]) resolved[m.get<std::string>()] = resolved_numerics_name(m.get<std::string>(), numerics);
  p["numerics"] = resolved;
  return p;
}

std::string engine_suite_numerics(const nlohmann::json& p, const std::string& model) {
  if (!p.contains("numerics")) return "fp32";  // stored before the parameter existed: FP32 numerics
  const nlohmann::json& n = p.at("numerics");
  if (!n.is_object() || !n.contains(model) || !n.at(model).is_string())
    throw UsageError(fmt::format("the parameter \"numerics\" names no numerics for model {}", model));
  return n.at(model).get<std::string>();
}

void add_engine_suite_numerics_option(CLI::App& cmd, std::string& numerics) {
  cmd.add_option("--numerics", numerics, std::string(kNumericsHelp) + " (per model)");
}

void check_engine_suite_params(const nlohmann::json& p) {
  resolve_model(p.at("baseline").get<std::string>());
  for (const auto& m : p.at("models")) {
    const ModelConfig cfg = resolve_model(m.get<std::string>());
    resolve_numerics_flag(cfg, m.get<std::string>(), engine_suite_numerics(p, m.get<std::string>()));
    for (const auto& c : p.at("ctx")) {
      const int64_t ctx = c.get<int64_t>();
      if (ctx <= 0) throw UsageError("context lengths must be positive");
      if (ctx > cfg.max_position)
        throw UsageError(fmt::format("context {} is beyond the maximum of {} ({} tokens)", format_size(ctx), m.get<std::string>(),
                                     cfg.max_position));
    }
  }
}

}  // namespace v4b::evals
