#include "evals/suites/throughput/serving_metrics.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/units.h"
#include "reports/stats/stats.h"
#include "reports/schema/throughput.h"

namespace v4b::evals {

namespace {
namespace names = schema::throughput;
}  // namespace

Slo parse_slo(const std::string& text) {
  Slo slo;
  if (text.empty()) return slo;
  for (const auto& item : parse_name_list(text, "SLO")) {
    const size_t colon = item.find(':');
    const std::string key = item.substr(0, colon);
    char* end = nullptr;
    const double ms = colon == std::string::npos ? -1 : std::strtod(item.c_str() + colon + 1, &end);
    if (colon == std::string::npos || *end || !(ms > 0))
      throw UsageError(fmt::format("invalid SLO '{}': expected NAME:MILLISECONDS with NAME ttft, tpot or e2el, e.g. ttft:500", item));
    if (key == "ttft") slo.ttft_ms = ms;
    else if (key == "tpot") slo.tpot_ms = ms;
    else if (key == "e2el") slo.e2el_ms = ms;
    else throw UsageError(fmt::format("invalid SLO '{}': expected ttft, tpot or e2el before the colon", item));
  }
  return slo;
}

bool meets_slo(const RequestRecord& r, const Slo& slo) {
  if (!r.ok) return false;
  if (slo.ttft_ms && r.ttft_s * 1e3 > *slo.ttft_ms) return false;
  if (slo.tpot_ms && r.tpot_s() * 1e3 > *slo.tpot_ms) return false;
  if (slo.e2el_ms && r.e2el_s * 1e3 > *slo.e2el_ms) return false;
  return true;
}

namespace {

void add_stats(std::vector<store::Metric>& out, const std::string& name, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  double mean = 0, var = 0;
  for (double x : ms) mean += x;
  if (!ms.empty()) mean /= static_cast<double>(ms.size());
  for (double x : ms) var += (x - mean) * (x - mean);
  if (!ms.empty()) var /= static_cast<double>(ms.size());  // population std, as numpy's default
  out.push_back({names::latency_metric("mean", name), mean, "ms"});
  out.push_back({names::latency_metric("median", name), stats::percentile(ms, 50), "ms"});
  out.push_back({names::latency_metric("std", name), std::sqrt(var), "ms"});
  out.push_back({names::latency_metric("p90", name), stats::percentile(ms, 90), "ms"});
  out.push_back({names::latency_metric("p99", name), stats::percentile(ms, 99), "ms"});
}

}  // namespace

std::vector<store::Metric> serving_metrics(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo) {
  std::vector<double> ttft, tpot, itl, e2el;
  int64_t completed = 0, failed = 0, in_tok = 0, out_tok = 0, good = 0;
  double busy_s = 0;
  for (const auto& r : records) {
    if (!r.ok) {
      ++failed;
      continue;
    }
    ++completed;
    in_tok += r.input_tokens;
    out_tok += r.output_tokens;
    busy_s += r.e2el_s;
    ttft.push_back(r.ttft_s * 1e3);
    e2el.push_back(r.e2el_s * 1e3);
    if (r.output_tokens > 1) tpot.push_back(r.tpot_s() * 1e3);
    for (double x : r.itl_s) itl.push_back(x * 1e3);
    good += !slo.empty() && meets_slo(r, slo);
  }
  const double dur = duration_s > 0 ? duration_s : 1e-9;
  std::vector<store::Metric> m = {
      {names::kCompleted, static_cast<double>(completed), ""},
      {names::kFailed, static_cast<double>(failed), ""},
      {names::kDuration, duration_s, "s"},
      {names::kTotalInputTokens, static_cast<double>(in_tok), "tokens"},
      {names::kTotalOutputTokens, static_cast<double>(out_tok), "tokens"},
      {names::kRequestThroughput, completed / dur, "req/s"},
      {names::kOutputThroughput, out_tok / dur, "tok/s"},
      {names::kTotalTokenThroughput, (in_tok + out_tok) / dur, "tok/s"},
      {names::kConcurrencyAvg, busy_s / dur, ""},
  };
  add_stats(m, "ttft", ttft);
  add_stats(m, "tpot", tpot);
  add_stats(m, "itl", itl);
  add_stats(m, "e2el", e2el);
  if (!slo.empty()) {
    m.push_back({names::kRequestGoodput, good / dur, "req/s"});
    m.push_back({names::kSloAttainment, completed ? static_cast<double>(good) / completed : 0, "ratio"});
  }
  return m;
}

nlohmann::json record_json(const RequestRecord& r) {
  nlohmann::json itl = nlohmann::json::array();
  for (double x : r.itl_s) itl.push_back(std::round(x * 1e6) / 1e3);  // ms, to the microsecond
  nlohmann::json j = {{"ok", r.ok},
                      {"start_s", r.start_s},
                      {"input_tokens", r.input_tokens},
                      {"client_input_tokens", r.client_input_tokens},
                      {"output_tokens", r.output_tokens},
                      {"output_tokens_from", r.output_tokens_from},
                      {"chunks", r.chunks},
                      {"ttft_ms", r.ttft_s * 1e3},
                      {"tpot_ms", r.tpot_s() * 1e3},
                      {"e2el_ms", r.e2el_s * 1e3},
                      {"itl_ms", itl}};
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

}  // namespace v4b::evals
