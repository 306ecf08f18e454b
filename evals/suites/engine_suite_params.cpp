#include "evals/suites/engine_suite_params.h"

#include <fmt/format.h>

#include "common/errors.h"
#include "evals/suites/param_json.h"
#include "common/units.h"
#include "engine/models/presets.h"
#include "evals/suites/numerics.h"

namespace v4b::evals {

namespace {

using nlohmann::json;

template <class T>
T get_or(const json& j, const char* key, T fallback) {
  return param_or(j, key, std::move(fallback), "engine suite");
}

}  // namespace

EngineSuiteParams EngineSuiteParams::from_flags(const std::string& models, const std::string& baseline, const std::string& ctx,
                                                const std::string& numerics) {
  EngineSuiteParams p;
  p.models = parse_name_list(models, "model");
  p.baseline = baseline;
  p.ctx = parse_size_list(ctx, "context length");
  for (const auto& m : p.models) p.numerics[m] = resolved_numerics_name(m, numerics);
  return p;
}

EngineSuiteParams EngineSuiteParams::from_json(const json& j) {
  EngineSuiteParams p;
  p.models = get_or(j, "models", p.models);
  p.baseline = get_or(j, "baseline", p.baseline);
  p.ctx = get_or(j, "ctx", p.ctx);
  p.numerics = get_or(j, "numerics", p.numerics);
  p.kv_formats = get_or(j, "kv_formats", p.kv_formats);
  return p;
}

json EngineSuiteParams::to_json() const {
  json j = {{"models", models}, {"baseline", baseline}, {"ctx", ctx}, {"numerics", numerics}};
  if (!kv_formats.empty()) j["kv_formats"] = kv_formats;
  return j;
}

std::string EngineSuiteParams::numerics_of(const std::string& model) const {
  if (numerics.empty()) return "fp32";  // stored before the parameter existed: FP32 numerics
  const auto it = numerics.find(model);
  if (it == numerics.end()) throw UsageError(fmt::format("the parameter \"numerics\" names no numerics for model {}", model));
  return it->second;
}

void EngineSuiteParams::validate() const {
  resolve_model(baseline);
  for (const auto& m : models) {
    const ModelConfig cfg = resolve_model(m);
    resolve_numerics_flag(cfg, m, numerics_of(m));
    for (int64_t c : ctx) {
      if (c <= 0) throw UsageError("context lengths must be positive");
      if (c > cfg.max_position) throw UsageError(fmt::format("context {} is beyond the maximum of {} ({} tokens)", format_size(c), m, cfg.max_position));
    }
  }
  for (const auto& f : kv_formats) parse_kv_format(f);
}

EngineSuiteCase EngineSuiteCase::from_json(const json& j) {
  EngineSuiteCase c;
  c.model = get_or(j, "model", c.model);
  c.baseline = get_or(j, "baseline", c.baseline);
  c.ctx = get_or(j, "ctx", c.ctx);
  c.kv_format = get_or(j, "kv_format", c.kv_format);
  c.numerics = get_or(j, "numerics", c.numerics);
  c.seed = get_or(j, "seed", c.seed);
  return c;
}

json EngineSuiteCase::to_json() const {
  json j = {{"model", model}, {"baseline", baseline}, {"ctx", ctx}};
  if (!kv_format.empty()) j["kv_format"] = kv_format;
  j["numerics"] = numerics;
  j["seed"] = seed;
  return j;
}

void add_engine_suite_numerics_option(CLI::App& cmd, std::string& numerics) {
  cmd.add_option("--numerics", numerics, std::string(kNumericsHelp) + " (per model)");
}

}  // namespace v4b::evals
