// The coding suite's parameters: the one place that names them (as a run stores them), gives their
// defaults and validates what needs no dataset. A case adds its chunk of task ids and the seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace v4b::evals::coding {

struct CodingParams {
  std::string dataset = "humaneval+";
  std::string backend = "oracle";          // engine | http | oracle | file
  std::string model;                       // engine: preset or checkpoint; http: the served name
  std::string samples;                     // file: the samples JSONL (absolute path)
  int n = 1;                               // samples per problem
  std::vector<int64_t> k{1};               // pass@k, each <= n
  double temperature = 0, top_p = 0.95;
  int64_t max_new_tokens = 512;
  std::vector<std::string> tasks;          // empty: all
  int limit = 0;                           // 0: all
  int workers = 2, chunk = 16;             // programs graded at once; problems per stored case
  std::string time_mode = "cpu";           // cpu | wall
  double time_floor = 4, time_factor = 4;  // per-test limits
  int64_t memory_bytes = int64_t{4} << 30;
  std::string base_url, api = "chat";      // http
  std::string numerics;                    // engine: "fp32" | "official" (resolved before it is stored)

  // Keys a stored run lacks take their defaults. UsageError for a value of the wrong type.
  static CodingParams from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  // UsageError naming the flag of the first bad value (what needs no dataset or model).
  void validate() const;
  bool generates() const { return backend == "engine" || backend == "http"; }
};

// One stored case: a chunk of problems.
struct CodingCase {
  CodingParams run;
  std::vector<std::string> chunk_tasks;
  uint64_t seed = 0;

  static CodingCase from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

}  // namespace v4b::evals::coding
