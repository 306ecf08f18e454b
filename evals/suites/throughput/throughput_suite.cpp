#include "evals/suites/throughput/throughput_suite.h"

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/hashing.h"
#include "common/units.h"
#include "evals/backends/scheduler.h"
#include "engine/models/presets.h"
#include "evals/backends/engine_runs.h"
#include "evals/suites/numerics.h"
#include "evals/backends/base_url.h"
#include "evals/backends/engine_backend.h"
#include "evals/suites/throughput/serving_metrics.h"
#include "evals/suites/throughput/throughput_params.h"

namespace v4b::evals {

namespace {

namespace names = schema::throughput;

using nlohmann::json;

std::string metric_suffix(const std::string& name) {
  std::string s;
  for (char c : name) s += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  return s;
}

json price_json(const ApiPrice& p) {
  return {{"name", p.name}, {"input_per_m", p.input_usd_per_m}, {"output_per_m", p.output_usd_per_m}, {"source", p.source}};
}

// Runs fn(i) for i in [0, n) on `workers` threads, each taking the next index when free.
void run_closed_loop(int64_t n, int64_t workers, const std::function<void(int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  std::vector<std::thread> ts;
  for (int64_t w = 0; w < std::min(n, workers); ++w)
    ts.emplace_back([&] {
      for (int64_t i; (i = next++) < n;) fn(i);
    });
  for (auto& t : ts) t.join();
}

// Starts fn(i) at its arrival time (a Poisson process of `rate` per second; inf = all at once),
// at most `cap` in flight when cap > 0.
void run_open_loop(int64_t n, double rate, int64_t cap, std::mt19937_64& rng, const std::function<void(int64_t)>& fn) {
  std::exponential_distribution<double> gap(std::isinf(rate) ? 1.0 : rate);
  std::mutex mu;
  std::condition_variable cv;
  int64_t in_flight = 0;
  std::vector<std::thread> ts;
  const auto t0 = Clock::now();
  double at = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isinf(rate)) {
      at += gap(rng);
      std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at)));
    }
    if (cap > 0) {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return in_flight < cap; });
    }
    {
      std::lock_guard lk(mu);
      ++in_flight;
    }
    ts.emplace_back([&, i] {
      fn(i);
      std::lock_guard lk(mu);
      --in_flight;
      cv.notify_all();
    });
  }
  for (auto& t : ts) t.join();
}

}  // namespace

const std::vector<ApiPrice>& published_prices() {
  // Output-token list prices of the DeepSeek API as quoted in the project's issue #10 (DeepSeek's
  // pricing page); input prices were not quoted there and are left unpublished (-1).
  static const std::vector<ApiPrice> all = {
      {"deepseek-v4-pro", -1, 3.48, "DeepSeek API list price (output, USD per 1M tokens)"},
      {"deepseek-v4-flash", -1, 0.28, "DeepSeek API list price (output, USD per 1M tokens)"},
  };
  return all;
}

std::vector<ApiPrice> read_prices_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(fmt::format("cannot read --prices '{}'", path));
  const json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw UsageError(fmt::format("--prices '{}' must be a JSON object {{\"NAME\": {{\"input_per_m\": X, \"output_per_m\": Y}}}}", path));
  std::vector<ApiPrice> out;
  for (const auto& [name, v] : j.items()) {
    auto num = [&](const char* k) {
      if (!v.is_object() || !v.contains(k)) return -1.0;
      if (!v[k].is_number() || v[k].get<double>() < 0)
        throw UsageError(fmt::format("--prices '{}': {}.{} must be a non-negative number", path, name, k));
      return v[k].get<double>();
    };
    ApiPrice p{name, num("input_per_m"), num("output_per_m"), v.is_object() ? v.value("source", path) : path};
    if (p.input_usd_per_m < 0 && p.output_usd_per_m < 0)
      throw UsageError(fmt::format("--prices '{}': '{}' has neither input_per_m nor output_per_m", path, name));
    out.push_back(p);
  }
  return out;
}

std::string ThroughputSuite::summary() const {
  return "serving load test (OpenAI-compatible endpoint or the engine): TTFT, TPOT, ITL, E2EL, tok/s, goodput, $/1M tokens";
}

std::string ThroughputSuite::description() const {
  return R"(Sends --num-prompts streaming requests per case to --base-url (any OpenAI-compatible server: v4bench
serve, vLLM, SGLang, the DeepSeek API) or, with --backend engine, to the embedded engine in process
(the scheduler `v4bench serve` uses; per-token timestamps are exact). A case is one fixed concurrency
(closed loop: N clients, each sending its next request when the last ends) or, with --rate, one
Poisson arrival rate in requests/s (inf = all at once; --max-concurrency caps requests in flight).
--warmup requests run first at the same load and are left out. Prompts are seeded per (seed, case,
request): text of --input-len tokens of the client tokenizer (ids for --backend engine), so two
cases never share a prompt (no prefix-cache flattery). Requests ask for temperature 0, --output-len
tokens (ignore_eos with --ignore-eos), stream_options.include_usage.

Definitions follow vLLM's `bench serve` (../shared/spec/harness-anchors.md §3.6): TTFT = first message
carrying a choices entry − request start (client clock, just before the POST); ITL = gap between
token-carrying messages (per streamed chunk; v4bench serve streams one token per chunk); E2EL = last
token-carrying message − start; TPOT = (E2EL − TTFT)/(output tokens − 1), excluding the first token;
output tokens from the server's usage, else re-tokenised text; throughputs over the case's wall time.

Metrics per case (concurrency=N or rate=R):
  completed, failed, duration (s), total_input_tokens, total_output_tokens,
  request_throughput (req/s), output_throughput and total_token_throughput (tok/s),
  concurrency_avg (SGLang's Σ E2EL/duration), {mean,median,std,p90,p99}_{ttft,tpot,itl,e2el}_ms
  (vLLM's bench serve names; runs stored before them said duration_s, output_tok_per_s, ...),
  request_goodput, slo_attainment (with --slo ttft:MS,tpot:MS,e2el:MS; DistServe's definition),
  usd_per_1m_output_tokens, usd_per_1m_input_tokens, usd_per_1m_total_tokens (with --price-per-hour:
  the whole hour charged to that kind of token, so they are not additive), and per published price
  cost_ratio_<name> = measured $/1M output / that API's $/1M output.
Samples: one per request (start_s, input/output tokens and their source, chunks, ttft/tpot/e2el ms, itl ms).
Published prices (USD/1M output): deepseek-v4-pro 3.48, deepseek-v4-flash 0.28 (DeepSeek API pricing
page); --prices FILE.json adds {"NAME": {"input_per_m": X, "output_per_m": Y, "source": "..."}}.
The API key comes from --api-key or $V4BENCH_API_KEY and is never stored. With --backend engine,
--numerics (official or fp32; default official for DeepSeek-V4 checkpoints, fp32 otherwise) is the
engine's arithmetic, resolved and stored as the param "numerics"; a server picks its own.

Example: v4bench serve -m v4-small --port 8000 &
         v4bench run throughput --base-url http://127.0.0.1:8000 --model v4-small --concurrency 1,4,16 \
           --input-len 128 --output-len 64 --ignore-eos --slo ttft:2000,tpot:500 --price-per-hour 2.5)";
}

void ThroughputSuite::add_options(CLI::App& cmd) {
  cmd.add_option("--backend", backend_, "http (an OpenAI-compatible endpoint) or engine (in process)")
      ->check(CLI::IsMember({"http", "engine"}))->capture_default_str();
  cmd.add_option("--base-url", base_url_, "http(s)://host:port[/v1] of the endpoint (backend http)");
  cmd.add_option("--endpoint", endpoint_, "/v1/completions or /v1/chat/completions")->capture_default_str();
  cmd.add_option("--model,-m", model_, "model id sent to the endpoint; for --backend engine a preset or checkpoint (required)");
  cmd.add_option("--api-key", api_key_, "bearer token (not stored)")->envname("V4BENCH_API_KEY");
  cmd.add_option("--tokenizer", tokenizer_path_,
                 "tokenizer.json that sizes prompts and counts output without usage (default: the server's /tokenize, else DeepSeek's)");
  cmd.add_option("--concurrency", concurrency_, "comma-separated fixed concurrencies, one case each")->capture_default_str();
  cmd.add_option("--rate", rate_, "comma-separated Poisson arrival rates in req/s (inf = all at once), one case each; replaces --concurrency");
  cmd.add_option("--max-concurrency", max_concurrency_, "with --rate: at most this many requests in flight (0 = no cap)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--num-prompts", num_prompts_, "timed requests per case")->capture_default_str()->check(CLI::PositiveNumber);
  cmd.add_option("--warmup", warmup_, "untimed requests per case, run first")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd.add_option("--input-len", input_len_, "prompt tokens: N or MIN-MAX (uniform)")->capture_default_str();
  cmd.add_option("--output-len", output_len_, "max_tokens per request: N or MIN-MAX (uniform)")->capture_default_str();
  cmd.add_flag("--ignore-eos", ignore_eos_, "ask the server to generate exactly --output-len tokens (vLLM's ignore_eos)");
  cmd.add_option("--slo", slo_, "goodput SLOs in ms, e.g. ttft:500,tpot:100,e2el:5000");
  cmd.add_option("--price-per-hour", price_per_hour_, "USD per hour of the measured deployment, for $/1M tokens")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--prices", prices_file_, "JSON file of more API prices to show beside the measured cost");
  cmd.add_option("--request-timeout", timeout_s_, "seconds before a request is given up")->capture_default_str()->check(CLI::PositiveNumber);
  cmd.add_option("--threads", threads_, "engine threads for --backend engine (0 = all cores)")->capture_default_str();
  cmd.add_option("--numerics", numerics_, std::string("--backend engine: ") + kNumericsHelp);
}

json ThroughputSuite::params() const {
  ThroughputParams p;
  p.backend = backend_, p.base_url = base_url_, p.endpoint = endpoint_, p.model = model_, p.tokenizer = tokenizer_path_;
  p.num_prompts = num_prompts_, p.warmup = warmup_, p.max_concurrency = max_concurrency_;
  p.input_len = parse_len_range(input_len_, "--input-len");
  p.output_len = parse_len_range(output_len_, "--output-len");
  p.ignore_eos = ignore_eos_, p.slo = slo_, p.price_per_hour = price_per_hour_, p.timeout_s = timeout_s_, p.threads = threads_;
  std::vector<ApiPrice> prices = published_prices();
  if (!prices_file_.empty())
    for (auto& pr : read_prices_file(prices_file_)) prices.push_back(pr);
  for (const auto& pr : prices) p.prices.push_back(price_json(pr));
  // The engine's numerics, resolved now so the stored params name what ran; a server picks its own.
  if (backend_ == "http" && !numerics_.empty()) throw UsageError("--numerics applies to --backend engine (a server picks its own)");
  if (backend_ == "engine" && !model_.empty() && is_runnable(model_)) p.numerics = resolved_numerics_name(model_, numerics_);
  if (!rate_.empty()) {
    for (const auto& r : parse_name_list(rate_, "rate")) {
      char* end = nullptr;
      const double v = r == "inf" ? INFINITY : std::strtod(r.c_str(), &end);
      if (r != "inf" && (*end || !(v > 0) || std::isinf(v))) throw UsageError(fmt::format("invalid --rate '{}': expected positive req/s or inf", r));
      p.rate.push_back(v);
    }
  } else {
    for (const auto& c : parse_name_list(concurrency_, "concurrency")) {
      char* end = nullptr;
      const long v = std::strtol(c.c_str(), &end, 10);
      if (*end || v < 1 || v > 100000) throw UsageError(fmt::format("invalid --concurrency '{}': expected positive integers", c));
      p.concurrency.push_back(v);
    }
  }
  return p.to_json();
}

std::string ThroughputSuite::model_label(const json& p) const { return p.value("model", ""); }

std::vector<Cell> ThroughputSuite::plan(const json& params, uint64_t seed, Backend*) const {
  const ThroughputParams p = ThroughputParams::from_json(params);
  p.validate();
  std::vector<Case> cases;
  for (const ThroughputCase& c : throughput_cases(p, seed)) cases.push_back({c.key(), c.to_json()});
  return cells_of(std::move(cases));
}

const Tokenizer& ThroughputSuite::tokenizer(const std::string& path) {
  if (!tok_) tok_ = std::make_unique<Tokenizer>(Tokenizer::load(path));
  return *tok_;
}

std::optional<BackendSpec> ThroughputSuite::backend_spec(const json& params, uint64_t seed) const {
  const ThroughputParams p = ThroughputParams::from_json(params);
  if (p.model.empty()) throw UsageError("throughput needs --model (the id the endpoint serves, or a preset for --backend engine)");
  require_backend_kind(p.backend);
  BackendSpec spec;
  spec.kind = p.backend;
  spec.model = p.model;
  if (p.backend == "http") {
    if (p.base_url.empty()) throw UsageError("--backend http needs --base-url http://host:port");
    parse_base_url(p.base_url);
  } else if (p.backend == "engine") {
    if (!is_runnable(p.model))
      throw UsageError(fmt::format("--backend engine needs a synthetic preset or a checkpoint directory, not '{}'", p.model));
    // Again: a resumed run's params come from the database.
    resolve_numerics_flag(resolve_model(p.model), p.model, stored_numerics(params));
    spec.numerics = stored_numerics(params);
  }
  spec.seed = seed;  // a synthetic preset's weights
  spec.threads = p.threads;
  spec.max_active = 1 << 16;  // the load generator bounds what is in flight
  spec.base_url = p.base_url;
  spec.api_key = api_key_;
  spec.timeout_s = p.timeout_s;
  spec.tokenizer = p.tokenizer;
  return spec;
}

namespace {

// One request through the backend, timed as vLLM's benchmark times it. Never throws.
RequestRecord send_timed(Backend& b, const GenerateRequest& q, int64_t client_input_tokens, Clock::time_point bench_start) {
  RequestRecord rec;
  rec.client_input_tokens = client_input_tokens;
  const Generation g = b.generate(q);
  rec.start_s = std::chrono::duration<double>(g.sent - bench_start).count();
  if (!g.ok()) {
    rec.error = g.error;
    return rec;
  }
  if (g.chunks == 0) {
    rec.error = fmt::format("the answer carried no tokens (finish reason '{}')", g.finish_reason);
    return rec;
  }
  rec.ok = true;
  rec.ttft_s = g.ttft_s;
  rec.e2el_s = g.e2e_s;
  rec.itl_s = g.itl_s;
  rec.chunks = g.chunks;
  rec.input_tokens = g.prompt_tokens >= 0 ? g.prompt_tokens : client_input_tokens;
  if (g.completion_tokens >= 0) {
    rec.output_tokens = g.completion_tokens, rec.output_tokens_from = b.kind() == "engine" ? "engine" : "usage";
  } else {  // a server without usage: count with the served model's tokens (vLLM's fallback)
    rec.output_tokens = static_cast<int64_t>(b.tokens().encode(g.text).size()), rec.output_tokens_from = "tokenizer";
  }
  return rec;
}

}  // namespace

CaseOutput ThroughputSuite::measure(const Case& c, Backend* backend) {
  const ThroughputCase tc = ThroughputCase::from_json(c.params);
  const ThroughputParams& p = tc.run;
  const bool http = p.backend == "http";
  const uint64_t seed = tc.seed;
  const int64_t n = p.num_prompts, warm = p.warmup;
  const bool closed = tc.closed;
  const int64_t conc = tc.concurrency;
  const double rate = tc.rate;

  // Prompts: seeded per (seed, case, request), warm-ups from their own stream.
  Backend& be = *backend;
  const auto* engine = dynamic_cast<const EngineBackend*>(&be);
  // The text's words come from a tokenizer's ordinary ids: the backend's own when it sizes text
  // with a local file (--tokenizer), else DeepSeek's.
  const Tokenizer* tok = nullptr;
  if (http) {
    const auto* local = dynamic_cast<const LocalCodec*>(&be.tokens());
    tok = local ? &local->tokenizer() : &tokenizer(p.tokenizer);
  }
  const bool chat = p.chat();
  struct Prompt {
    GenerateRequest q;
    int64_t client_input_tokens = 0;
  };
  auto make_request = [&](int64_t i, bool warmup) {
    std::mt19937_64 rng(seed ^ fnv1a(c.key) ^ (static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull) ^ (warmup ? 0xA5A5A5A5ull : 0));
    auto pick = [&](const std::array<int64_t, 2>& r) { return r[0] + static_cast<int64_t>(rng() % static_cast<uint64_t>(r[1] - r[0] + 1)); };
    Prompt pr;
    const int64_t len = pick(p.input_len);
    pr.q.max_tokens = pick(p.output_len);
    pr.q.ignore_eos = p.ignore_eos;
    if (!http) {
      const auto vocab = static_cast<uint64_t>(engine->config().vocab);
      for (int64_t k = 0; k < len; ++k) pr.q.prompt_ids.push_back(static_cast<int32_t>(rng() % vocab));
      pr.client_input_tokens = len;
      return pr;
    }
    // Ordinary BPE ids (past the specials and byte tokens) make the text; it is cut to length in the
    // served model's tokens (the server's /tokenize, or --tokenizer).
    const TokenCodec& served = be.tokens();
    const auto lo = std::min<uint64_t>(1000, static_cast<uint64_t>(tok->vocab_size()) / 2);
    const auto hi = std::min<uint64_t>(100000, static_cast<uint64_t>(tok->vocab_size()));
    std::vector<int32_t> ids;
    for (int64_t k = 0; k < len; ++k) ids.push_back(static_cast<int32_t>(lo + rng() % (hi - lo)));
    std::vector<int32_t> again = served.encode(tok->decode(ids));
    if (static_cast<int64_t>(again.size()) > len) again.resize(static_cast<size_t>(len));
    pr.q.prompt_text = served.decode(again);
    pr.q.chat = chat;
    pr.q.stream = true;
    pr.client_input_tokens = static_cast<int64_t>(served.encode(pr.q.prompt_text).size());
    return pr;
  };
  std::vector<Prompt> warmups, timed;
  for (int64_t i = 0; i < warm; ++i) warmups.push_back(make_request(i, true));
  for (int64_t i = 0; i < n; ++i) timed.push_back(make_request(i, false));

  std::mt19937_64 arrivals(seed ^ fnv1a("arrivals|" + c.key));
  std::vector<RequestRecord> records(static_cast<size_t>(n));
  auto run = [&](std::vector<Prompt>& reqs, std::vector<RequestRecord>* out, Clock::time_point t0) {
    auto fn = [&](int64_t i) {
      const Prompt& pr = reqs[static_cast<size_t>(i)];
      RequestRecord r = send_timed(be, pr.q, pr.client_input_tokens, t0);
      if (out) (*out)[static_cast<size_t>(i)] = std::move(r);
    };
    const auto count = static_cast<int64_t>(reqs.size());
    if (closed) run_closed_loop(count, conc, fn);
    else run_open_loop(count, rate, conc, arrivals, fn);
  };
  if (!warmups.empty()) run(warmups, nullptr, Clock::now());
  const auto t0 = Clock::now();
  run(timed, &records, t0);
  const double duration = std::chrono::duration<double>(Clock::now() - t0).count();

  CaseOutput out;
  const Slo slo = parse_slo(p.slo);
  out.metrics = serving_metrics(records, duration, slo);
  auto metric = [&](const char* name) {
    for (const auto& m : out.metrics)
      if (m.name == name) return m.value;
    return 0.0;
  };
  const double price = p.price_per_hour;
  const double out_tps = metric(names::kOutputThroughput), tot_tps = metric(names::kTotalTokenThroughput), in_tps = tot_tps - out_tps;
  if (price > 0) {
    auto per_m = [&](double tps) { return tps > 0 ? price / 3600.0 / tps * 1e6 : 0; };
    const double usd_out = per_m(out_tps);
    out.metrics.push_back({names::kUsdPer1mOutput, usd_out, "USD"});
    out.metrics.push_back({names::kUsdPer1mInput, per_m(in_tps), "USD"});
    out.metrics.push_back({names::kUsdPer1mTotal, per_m(tot_tps), "USD"});
    for (const auto& pr : p.prices)
      if (pr.value("output_per_m", -1.0) > 0)
        out.metrics.push_back({names::kCostRatioPrefix + metric_suffix(pr.value("name", "")), usd_out / pr["output_per_m"].get<double>(), "ratio"});
  }
  for (int64_t i = 0; i < n; ++i) out.samples.push_back({i, record_json(records[static_cast<size_t>(i)])});
  if (metric(names::kCompleted) == 0)
    out.failure = "every request failed: " + (records.empty() ? std::string("none sent") : records.front().error);
  return out;
}

}  // namespace v4b::evals
