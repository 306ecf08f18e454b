// The kld suite's parameters: the one place that names them (as a run stores them), gives their
// defaults and validates what needs no model. A case stores the run's parameters plus its
// candidate's attention, KV format and numerics, and the seed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace v4b::evals {

struct KldParams {
  std::string base;  // a model (preset or checkpoint directory) or a logits FILE.npy
  std::string base_attention = "native", base_kv_format = "bf16";
  std::string base_numerics;  // "fp32" | "official", resolved before it is stored; "" for a file
  std::string cand;           // the candidate's source (the base model when the flag is absent)
  std::vector<std::string> cand_attentions{"native"}, cand_kv_formats{"bf16"};
  // Resolved per candidate; absent for a file candidate and in runs stored before numerics existed
  // (whose case keys then lack "cand_numerics", and whose model sides ran FP32).
  std::optional<std::vector<std::string>> cand_numerics_list;
  int64_t tokens = 4096, score_from = 0, bin = 1024;
  std::string text, ids, haystack;  // the sequence: exactly one is set

  // Keys a stored run lacks take their defaults. UsageError for a value of the wrong type.
  static KldParams from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  // UsageError naming the flag of the first bad value (checks that need no model or file).
  void validate() const;

  // What each side's sessions compute: "" for a file, "fp32" for a model side of an old run.
  std::string base_side_numerics() const;
  std::vector<std::string> cand_side_numerics() const;  // one case each
};

bool is_logits_file(const std::string& source);  // ends in .npy

// One planned case: a candidate configuration of a run.
struct KldCase {
  KldParams run;
  std::string cand_attention, cand_kv_format;
  std::string cand_numerics;  // "" for a file or an old run
  uint64_t seed = 0;

  static KldCase from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  // "cand_attention=native|cand_kv_format=bf16[|cand_numerics=official]": the numerics part only
  // where the run stores a numerics list, so runs stored before numerics resume under their keys.
  std::string key() const;
};

// The cases of a run: candidate attention x KV format x numerics, in that nesting.
std::vector<KldCase> kld_cases(const KldParams& p, uint64_t seed);

}  // namespace v4b::evals
