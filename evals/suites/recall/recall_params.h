// The recall suite's parameters: the one place that names them (as a run stores them), gives their
// defaults and validates them. A cell adds its task, context, depth and the seed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace v4b::evals::recall {

struct RecallParams {
  std::vector<std::string> tasks{"niah"};
  std::string model;                          // stored as "models": [model]
  std::vector<std::string> attention;         // attention modes, each sample under every one
  std::vector<int64_t> ctx;                   // target tokens: prompt + answer budget
  std::vector<double> depths;                 // NIAH needle depths in %
  int samples = 1;
  int max_new_tokens = 0;                     // 0: the task's RULER default
  std::string template_name = "default";      // NIAH template; the three texts below override it
  std::optional<std::string> needle, question, answer_prefix;
  std::string tokenizer;                      // "" : the backend's
  std::string backend = "engine";             // engine | http
  std::string base_url;                       // http
  std::string numerics;                       // engine: "fp32" | "official" (resolved before it is stored)
  bool map_ids = false;                       // fold ids into a synthetic preset's vocabulary

  // Keys a stored run lacks take their defaults. UsageError for a value of the wrong type.
  static RecallParams from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  // UsageError naming the flag of the first bad value (what needs no model).
  void validate() const;
};

// One (task, ctx, depth) cell of a run: every sample of it under every attention mode.
struct RecallCell {
  RecallParams run;
  std::string task;
  int64_t ctx = 0;
  std::optional<double> depth;  // NIAH grid; none: RULER's random placement
  uint64_t seed = 0;

  static RecallCell from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  nlohmann::json depth_json() const;  // the depth as stored: a number or "random"
};

}  // namespace v4b::evals::recall
