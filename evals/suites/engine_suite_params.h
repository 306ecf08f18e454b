// The parameters the engine-backed measurement suites (kv, flops) share.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace v4b::evals {

// Shared by the engine-backed suites: model list, baseline, contexts within each model's limit, and
// "numerics": {model: "fp32" | "official"}, each model's --numerics resolved (every model checked,
// the analytically projected ones too, before anything is stored).
nlohmann::json engine_suite_params(const std::string& models, const std::string& baseline, const std::string& ctx,
                                   const std::string& numerics);
void check_engine_suite_params(const nlohmann::json& p);
// One model's stored numerics ("fp32" for runs stored before the parameter existed).
std::string engine_suite_numerics(const nlohmann::json& p, const std::string& model);
// The --numerics flag of the kv and flops suites.
void add_engine_suite_numerics_option(CLI::App& cmd, std::string& numerics);

}  // namespace v4b::evals
