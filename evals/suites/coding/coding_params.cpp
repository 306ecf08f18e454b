#include "evals/suites/coding/coding_params.h"

#include <fmt/format.h>

#include "common/errors.h"
#include "evals/backends/backend.h"
#include "evals/suites/param_json.h"

namespace v4b::evals::coding {

namespace {

using nlohmann::json;

template <class T>
T get_or(const json& j, const char* key, T fallback) {
  return param_or(j, key, std::move(fallback), "coding");
}

}  // namespace

CodingParams CodingParams::from_json(const json& j) {
  CodingParams p;
  p.dataset = get_or(j, "dataset", p.dataset);
  p.backend = get_or(j, "backend", p.backend);
  p.model = get_or(j, "model", p.model);
  p.samples = get_or(j, "samples", p.samples);
  p.n = get_or(j, "n", p.n);
  p.k = get_or(j, "k", p.k);
  p.temperature = get_or(j, "temperature", p.temperature);
  p.top_p = get_or(j, "top_p", p.top_p);
  p.max_new_tokens = get_or(j, "max_new_tokens", p.max_new_tokens);
  p.tasks = get_or(j, "tasks", p.tasks);
  p.limit = get_or(j, "limit", p.limit);
  p.workers = get_or(j, "workers", p.workers);
  p.chunk = get_or(j, "chunk", p.chunk);
  p.time_mode = get_or(j, "time_mode", p.time_mode);
  p.time_floor = get_or(j, "time_floor", p.time_floor);
  p.time_factor = get_or(j, "time_factor", p.time_factor);
  p.memory_bytes = get_or(j, "memory_bytes", p.memory_bytes);
  p.base_url = get_or(j, "base_url", p.base_url);
  p.api = get_or(j, "api", p.api);
  p.numerics = get_or(j, "numerics", p.numerics);
  return p;
}

json CodingParams::to_json() const {
  json j = {{"dataset", dataset}, {"backend", backend}, {"n", n}, {"k", k}, {"temperature", temperature}, {"top_p", top_p},
            {"max_new_tokens", max_new_tokens}, {"tasks", tasks}, {"limit", limit}, {"workers", workers}, {"chunk", chunk},
            {"time_mode", time_mode}, {"time_floor", time_floor}, {"time_factor", time_factor}, {"memory_bytes", memory_bytes}};
  if (!model.empty()) j["model"] = model;
  if (!samples.empty()) j["samples"] = samples;
  if (backend == "http") {
    j["base_url"] = base_url;
    j["api"] = api;
  }
  if (!numerics.empty()) j["numerics"] = numerics;
  return j;
}

void CodingParams::validate() const {
  require_backend_kind(backend, {"oracle", "file"});
  if (n < 1) throw UsageError("--n must be at least 1");
  if (workers < 1) throw UsageError("--workers must be at least 1");
  if (chunk < 1) throw UsageError("--chunk must be at least 1");
  if (limit < 0) throw UsageError("--limit must be 0 (all) or positive");
  if (time_mode != "cpu" && time_mode != "wall") throw UsageError("--time-mode must be cpu or wall");
  if (time_floor <= 0 || time_factor <= 0) throw UsageError("--time-floor and --time-factor must be positive");
  if (memory_bytes < (int64_t{256} << 20)) throw UsageError("--memory must be at least 256m (python3 itself needs ~100m)");
  if (temperature < 0 || top_p <= 0 || top_p > 1) throw UsageError("sampling needs --temperature >= 0 and 0 < --top-p <= 1");
  if (generates() && n > 1 && temperature == 0)
    throw UsageError(fmt::format("--n {} needs --temperature > 0: greedy samples are all the same", n));
  if (max_new_tokens < 1) throw UsageError("--max-new-tokens must be at least 1");
  if (backend == "file" && samples.empty()) throw UsageError("--backend file needs --samples-file FILE");
  if (k.empty()) throw UsageError("--k needs at least one value");
}

CodingCase CodingCase::from_json(const json& j) {
  CodingCase c;
  c.run = CodingParams::from_json(j);
  c.chunk_tasks = get_or(j, "chunk_tasks", c.chunk_tasks);
  c.seed = get_or(j, "seed", uint64_t{0});
  return c;
}

json CodingCase::to_json() const {
  json j = run.to_json();
  j["chunk_tasks"] = chunk_tasks;
  j["seed"] = seed;
  return j;
}

}  // namespace v4b::evals::coding
