#include "evals/suites/throughput/throughput_params.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "common/errors.h"
#include "evals/backends/backend.h"
#include "evals/suites/param_json.h"
#include "evals/suites/throughput/serving_metrics.h"

namespace v4b::evals {

namespace {

using nlohmann::json;

// j[key] as T when present, else `fallback`; a value of another type is a UsageError.
template <class T>
T get_or(const json& j, const char* key, T fallback) {
  return param_or(j, key, std::move(fallback), "throughput");
}

json rate_json(double r) { return std::isinf(r) ? json("inf") : json(r); }
double rate_of(const json& r) { return r.is_string() ? INFINITY : r.get<double>(); }
std::string rate_label(double r) { return std::isinf(r) ? "inf" : fmt::format("{:g}", r); }

}  // namespace

std::array<int64_t, 2> parse_len_range(const std::string& text, const char* flag) {
  const size_t dash = text.find('-');
  auto one = [&](const std::string& s) {
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end || v < 1 || v > (1ll << 24))
      throw UsageError(fmt::format("invalid {} '{}': expected N or MIN-MAX with positive integers", flag, text));
    return static_cast<int64_t>(v);
  };
  const int64_t lo = one(text.substr(0, dash)), hi = dash == std::string::npos ? lo : one(text.substr(dash + 1));
  if (hi < lo) throw UsageError(fmt::format("invalid {} '{}': MIN is above MAX", flag, text));
  return {lo, hi};
}

ThroughputParams ThroughputParams::from_json(const json& j) {
  ThroughputParams p;
  p.backend = get_or(j, "backend", p.backend);
  p.base_url = get_or(j, "base_url", p.base_url);
  p.endpoint = get_or(j, "endpoint", p.endpoint);
  p.model = get_or(j, "model", p.model);
  p.tokenizer = get_or(j, "tokenizer", p.tokenizer);
  p.numerics = get_or(j, "numerics", p.numerics);
  p.concurrency = get_or(j, "concurrency", p.concurrency);
  if (j.contains("rate") && j["rate"].is_array())
    for (const auto& r : j["rate"]) p.rate.push_back(rate_of(r));
  p.num_prompts = get_or(j, "num_prompts", p.num_prompts);
  p.warmup = get_or(j, "warmup", p.warmup);
  p.max_concurrency = get_or(j, "max_concurrency", p.max_concurrency);
  p.input_len = get_or(j, "input_len", p.input_len);
  p.output_len = get_or(j, "output_len", p.output_len);
  p.ignore_eos = get_or(j, "ignore_eos", p.ignore_eos);
  p.slo = get_or(j, "slo", p.slo);
  p.price_per_hour = get_or(j, "price_per_hour", p.price_per_hour);
  p.timeout_s = get_or(j, "timeout_s", p.timeout_s);
  p.prices = get_or(j, "prices", p.prices);
  p.threads = get_or(j, "threads", p.threads);
  return p;
}

json ThroughputParams::to_json() const {
  json j = {{"backend", backend}, {"base_url", base_url}, {"endpoint", endpoint}, {"model", model}, {"tokenizer", tokenizer},
            {"num_prompts", num_prompts}, {"warmup", warmup}, {"input_len", input_len}, {"output_len", output_len},
            {"ignore_eos", ignore_eos}, {"slo", slo}, {"price_per_hour", price_per_hour}, {"prices", prices},
            {"timeout_s", timeout_s}, {"threads", threads}, {"max_concurrency", max_concurrency}};
  if (!numerics.empty()) j["numerics"] = numerics;
  if (!rate.empty()) {
    j["rate"] = json::array();
    for (double r : rate) j["rate"].push_back(rate_json(r));
  } else if (!concurrency.empty()) {
    j["concurrency"] = concurrency;
  }
  return j;
}

void ThroughputParams::validate() const {
  require_backend_kind(backend);
  if (model.empty()) throw UsageError("throughput needs --model (the id the endpoint serves, or a preset for --backend engine)");
  if (!endpoint.ends_with("/completions"))
    throw UsageError(fmt::format("invalid --endpoint '{}': expected /v1/completions or /v1/chat/completions", endpoint));
  if (concurrency.empty() == rate.empty()) throw UsageError("throughput needs --concurrency or --rate (one of them)");
  for (int64_t c : concurrency)
    if (c < 1 || c > 100000) throw UsageError(fmt::format("invalid --concurrency '{}': expected positive integers", c));
  for (double r : rate)
    if (!(r > 0)) throw UsageError(fmt::format("invalid --rate '{}': expected positive req/s or inf", r));
  if (num_prompts < 1) throw UsageError("--num-prompts must be positive");
  if (warmup < 0 || max_concurrency < 0) throw UsageError("--warmup and --max-concurrency must be non-negative");
  for (const auto& [range, flag] : {std::pair{input_len, "--input-len"}, std::pair{output_len, "--output-len"}})
    if (range[0] < 1 || range[1] < range[0]) throw UsageError(fmt::format("invalid {} {}-{}", flag, range[0], range[1]));
  parse_slo(slo);
  if (price_per_hour < 0) throw UsageError("--price-per-hour must be non-negative");
  if (!(timeout_s > 0)) throw UsageError("--request-timeout must be positive");
}

ThroughputCase ThroughputCase::from_json(const json& j) {
  ThroughputCase c;
  json run = j;  // the case's single concurrency or rate is not the run's list
  run.erase("concurrency");
  run.erase("rate");
  c.run = ThroughputParams::from_json(run);
  c.closed = j.contains("concurrency");
  c.concurrency = c.closed ? get_or(j, "concurrency", int64_t{0}) : c.run.max_concurrency;
  if (!c.closed) c.rate = rate_of(j.at("rate"));
  c.seed = get_or(j, "seed", uint64_t{0});
  return c;
}

json ThroughputCase::to_json() const {
  json j = run.to_json();
  if (closed) j["concurrency"] = concurrency;
  else j["rate"] = rate_json(rate);
  j["seed"] = seed;
  return j;
}

std::string ThroughputCase::key() const { return closed ? fmt::format("concurrency={}", concurrency) : "rate=" + rate_label(rate); }

std::vector<ThroughputCase> throughput_cases(const ThroughputParams& p, uint64_t seed) {
  ThroughputCase base;
  base.run = p;
  base.run.concurrency.clear();
  base.run.rate.clear();
  base.seed = seed;
  std::vector<ThroughputCase> out;
  for (int64_t c : p.concurrency) {
    out.push_back(base);
    out.back().concurrency = c;
  }
  for (double r : p.rate) {
    out.push_back(base);
    out.back().closed = false;
    out.back().rate = r;
    out.back().concurrency = p.max_concurrency;
  }
  return out;
}

}  // namespace v4b::evals
