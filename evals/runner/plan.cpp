#include "evals/runner/plan.h"

#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/errors.h"

namespace v4b::evals {

Plan load_plan(const std::string& path, uint64_t seed) {
  std::ifstream in(path);
  if (!in) throw UsageError(fmt::format("cannot read plan '{}'", path));
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) throw UsageError(fmt::format("plan '{}' is not valid JSON", path));
  if (!j.is_object() || !j.contains("steps") || !j["steps"].is_array() || j["steps"].empty())
    throw UsageError(fmt::format("plan '{}' needs a non-empty \"steps\" array", path));
  Plan plan;
  plan.name = j.value("name", path);
  plan.description = j.value("description", "");
  for (size_t i = 0; i < j["steps"].size(); ++i) {
    const nlohmann::json& s = j["steps"][i];
    const std::string where = fmt::format("plan '{}' step {}", path, i + 1);
    if (!s.is_object() || !s.contains("suite") || !s["suite"].is_string()) throw UsageError(where + ": needs a \"suite\" name");
    PlanStep step;
    step.suite = s["suite"];
    if (s.contains("args") && s["args"].is_string()) {
      std::istringstream words(s["args"].get<std::string>());
      for (std::string w; words >> w;) step.args.push_back(w);
    } else if (s.contains("args")) {
      if (!s["args"].is_array()) throw UsageError(where + ": \"args\" is a list of strings or one string");
      for (const auto& a : s["args"]) {
        if (!a.is_string()) throw UsageError(where + ": \"args\" is a list of strings or one string");
        step.args.push_back(a);
      }
    }
    step.instance = make_suite(step.suite);
    CLI::App app(step.suite);
    step.instance->add_options(app);
    std::vector<std::string> reversed(step.args.rbegin(), step.args.rend());  // CLI11 consumes from the back
    try {
      app.parse(reversed);
    } catch (const CLI::ParseError& e) {
      throw UsageError(fmt::format("{} ({}): {}", where, step.suite, e.what()));
    }
    try {
      step.params = step.instance->params();
      step.instance->backend_spec(step.params, seed);   // names no backend it cannot build
      step.instance->plan(step.params, seed, nullptr);  // checks that need the model wait for the run
    } catch (const UsageError& e) {
      throw UsageError(fmt::format("{} ({}): {}", where, step.suite, e.what()));
    }
    plan.steps.push_back(std::move(step));
  }
  return plan;
}

std::vector<PlanOutcome> run_plan(Plan& plan, const std::string& db_path, uint64_t seed, bool progress) {
  std::vector<PlanOutcome> out;
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    PlanStep& s = plan.steps[i];
    if (progress) fmt::print(stderr, "[plan {}: step {}/{}] {} {}\n", plan.name, i + 1, plan.steps.size(), s.suite, fmt::join(s.args, " "));
    RunRequest req{db_path, s.params, seed, std::nullopt, progress};
    out.push_back({s.suite, run_suite(*s.instance, req)});
  }
  return out;
}

}  // namespace v4b::evals
