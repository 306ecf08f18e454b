// The throughput suite's parameters: the one place that names them (as a run stores them), gives
// their defaults and validates them. A case stores the run's parameters with one concurrency or one
// rate, and the seed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace v4b::evals {

struct ThroughputParams {
  std::string backend = "http";            // http | engine
  std::string base_url, endpoint = "/v1/completions", model, tokenizer;
  std::string numerics;                    // engine: "fp32" | "official", resolved before it is stored
  std::vector<int64_t> concurrency;        // closed loop: one case per value ...
  std::vector<double> rate;                // ... or Poisson arrivals per second (inf: all at once)
  int64_t num_prompts = 16, warmup = 2;
  int64_t max_concurrency = 0;             // open loop: at most this many in flight (0: no cap)
  std::array<int64_t, 2> input_len{128, 128}, output_len{32, 32};  // [min, max] tokens, uniform
  bool ignore_eos = false;
  std::string slo;                         // "ttft:MS,tpot:MS,e2el:MS"
  double price_per_hour = 0, timeout_s = 600;
  nlohmann::json prices = nlohmann::json::array();  // [{name, input_per_m, output_per_m, source}]
  int threads = 0;                         // engine threads (0: all cores)

  // Keys a stored run lacks take their defaults. Throws UsageError for a value of the wrong type.
  static ThroughputParams from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  // UsageError naming the flag of the first bad value.
  void validate() const;
  bool chat() const { return endpoint.ends_with("chat/completions"); }
};

// One planned case of a run.
struct ThroughputCase {
  ThroughputParams run;      // its concurrency and rate lists are empty
  bool closed = true;        // a fixed concurrency (else a Poisson rate)
  int64_t concurrency = 0;   // closed: in flight; open: the cap (max_concurrency)
  double rate = 0;           // open: requests per second (inf: all at once)
  uint64_t seed = 0;

  static ThroughputCase from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  std::string key() const;   // "concurrency=4" | "rate=2.5" | "rate=inf"
};

// The cases of a run, in order: one per concurrency, or one per rate.
std::vector<ThroughputCase> throughput_cases(const ThroughputParams& p, uint64_t seed);

// "128" or "64-256" (inclusive): UsageError naming `flag` otherwise.
std::array<int64_t, 2> parse_len_range(const std::string& text, const char* flag);

}  // namespace v4b::evals
