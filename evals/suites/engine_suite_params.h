// The parameters the engine-backed measurement suites (kv, flops) share: the one place that names
// them (as a run stores them), gives their defaults and validates them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace v4b::evals {

struct EngineSuiteParams {
  std::vector<std::string> models;
  std::string baseline;                        // the ratios' denominator (analytic)
  std::vector<int64_t> ctx;
  std::map<std::string, std::string> numerics; // per model: "fp32" | "official", resolved before it is stored
  std::vector<std::string> kv_formats;         // kv: storage formats, one case each (stored only when set)

  // Every model's --numerics resolved (the analytically projected ones too), before anything is stored.
  static EngineSuiteParams from_flags(const std::string& models, const std::string& baseline, const std::string& ctx,
                                      const std::string& numerics);
  // Keys a stored run lacks take their defaults. UsageError for a value of the wrong type.
  static EngineSuiteParams from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  // Models, baseline, numerics and contexts within each model's limit; UsageError naming the flag.
  void validate() const;
  // One model's numerics ("fp32" for runs stored before the parameter existed).
  std::string numerics_of(const std::string& model) const;
};

// One case: a model at one context (and one KV format for kv).
struct EngineSuiteCase {
  std::string model, baseline;
  int64_t ctx = 0;
  std::string kv_format;  // kv only
  std::string numerics = "fp32";
  uint64_t seed = 0;

  static EngineSuiteCase from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

// The --numerics flag of the kv and flops suites.
void add_engine_suite_numerics_option(CLI::App& cmd, std::string& numerics);

}  // namespace v4b::evals
