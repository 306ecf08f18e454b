#include "evals/suites/recall/recall_params.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "common/errors.h"
#include "evals/backends/backend.h"
#include "evals/suites/param_json.h"
#include "engine/runtime/engine.h"
#include "evals/suites/recall/generators.h"

namespace v4b::evals::recall {

namespace {

using nlohmann::json;

template <class T>
T get_or(const json& j, const char* key, T fallback) {
  return param_or(j, key, std::move(fallback), "recall");
}

std::optional<std::string> optional_text(const json& j, const char* key) {
  if (!j.contains(key)) return std::nullopt;
  return get_or(j, key, std::string());
}

}  // namespace

RecallParams RecallParams::from_json(const json& j) {
  RecallParams p;
  p.tasks = get_or(j, "tasks", p.tasks);
  const auto models = get_or(j, "models", std::vector<std::string>{});
  if (models.size() > 1) throw UsageError("recall needs --model (one model per run)");
  if (!models.empty()) p.model = models[0];
  p.attention = get_or(j, "attention", p.attention);
  p.ctx = get_or(j, "ctx", p.ctx);
  p.depths = get_or(j, "depths", p.depths);
  p.samples = get_or(j, "samples", p.samples);
  p.max_new_tokens = get_or(j, "max_new_tokens", p.max_new_tokens);
  p.template_name = get_or(j, "template", p.template_name);
  p.needle = optional_text(j, "needle");
  p.question = optional_text(j, "question");
  p.answer_prefix = optional_text(j, "answer_prefix");
  p.tokenizer = get_or(j, "tokenizer", p.tokenizer);
  p.backend = get_or(j, "backend", p.backend);
  p.base_url = get_or(j, "base_url", p.base_url);
  p.numerics = get_or(j, "numerics", p.numerics);
  p.map_ids = get_or(j, "map_ids", p.map_ids);
  return p;
}

json RecallParams::to_json() const {
  json j = {{"tasks", tasks},
            {"models", model.empty() ? json::array() : json::array({model})},
            {"attention", attention},
            {"ctx", ctx},
            {"depths", depths},
            {"samples", samples},
            {"max_new_tokens", max_new_tokens},
            {"template", template_name},
            {"tokenizer", tokenizer},
            {"backend", backend},
            {"map_ids", map_ids}};
  if (needle) j["needle"] = *needle;
  if (question) j["question"] = *question;
  if (answer_prefix) j["answer_prefix"] = *answer_prefix;
  if (backend == "http") j["base_url"] = base_url;
  if (!numerics.empty()) j["numerics"] = numerics;
  return j;
}

void RecallParams::validate() const {
  for (const auto& t : tasks) task_info(t);  // names the known tasks
  if (model.empty()) throw UsageError("recall needs --model (one model per run)");
  std::set<std::string> seen;
  for (const auto& m : attention) {
    parse_attention_mode(m);
    if (!seen.insert(m).second) throw UsageError(fmt::format("--attention lists '{}' twice", m));
  }
  if (attention.empty()) throw UsageError("--attention needs at least one mode");
  if (samples < 1) throw UsageError("--n must be at least 1");
  if (max_new_tokens < 0) throw UsageError("--max-new-tokens must be >= 0");
  for (double d : depths)
    if (!(d >= 0 && d <= 100)) throw UsageError(fmt::format("needle depth {:g} is outside 0-100", d));
  if (std::find(tasks.begin(), tasks.end(), "niah") != tasks.end() && depths.empty())
    throw UsageError("--depths needs at least one depth for the niah task");
  for (int64_t c : ctx)
    if (c <= 0) throw UsageError("context lengths must be positive");
  require_backend_kind(backend);
  if (backend == "http" && attention != std::vector<std::string>{"native"})
    throw UsageError("--backend http serves one attention mode: pass --attention native");
  if (needle && needle->find("{value}") == std::string::npos) throw UsageError("--needle must contain {value}");
}

RecallCell RecallCell::from_json(const json& j) {
  RecallCell c;
  json run = j;  // the cell's one context is not the run's list
  run.erase("ctx");
  c.run = RecallParams::from_json(run);
  c.task = get_or(j, "task", std::string());
  c.ctx = get_or(j, "ctx", int64_t{0});
  if (j.contains("depth") && j["depth"].is_number()) c.depth = j["depth"].get<double>();
  c.seed = get_or(j, "seed", uint64_t{0});
  return c;
}

json RecallCell::depth_json() const { return depth ? json(*depth) : json("random"); }

json RecallCell::to_json() const {
  json j = run.to_json();
  j.update({{"task", task}, {"ctx", ctx}, {"depth", depth_json()}, {"seed", seed}});
  return j;
}

}  // namespace v4b::evals::recall
