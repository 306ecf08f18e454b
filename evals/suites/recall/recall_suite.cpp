#include "evals/suites/recall/recall_suite.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/units.h"
#include "engine/models/presets.h"
#include "evals/backends/base_url.h"
#include "evals/backends/engine_backend.h"
#include "evals/metrics/divergence.h"
#include "evals/suites/numerics.h"
#include "evals/suites/recall/recall_params.h"
#include "evals/suites/recall/scoring.h"
#include "reports/stats/stats.h"

namespace v4b::evals {

using nlohmann::json;
namespace rc = recall;

namespace {

namespace names = schema::recall;

constexpr size_t kMaxAnswerPositions = 16;  // teacher-forced answer tokens compared per sample

std::vector<double> parse_depths(const std::string& text) {
  for (const char* kind : {"linear:", "sigmoid:"}) {
    if (text.rfind(kind, 0) == 0) {
      int n = 0;
      try {
        n = std::stoi(text.substr(std::string(kind).size()));
      } catch (const std::exception&) {
      }
      if (n < 1) throw UsageError(fmt::format("--depths '{}': expected {}N with N >= 1", text, kind));
      return rc::depth_points(n, kind[0] == 's');
    }
  }
  std::vector<double> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    size_t used = 0;
    double d = 0;
    try {
      d = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size())
      throw UsageError(fmt::format("--depths: '{}' is not a number (expected percents 0-100, linear:N or sigmoid:N)", item));
    out.push_back(d);
  }
  return out;
}

std::string depth_label(const json& d) { return d.is_string() ? d.get<std::string>() : fmt::format("{:g}", d.get<double>()); }

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

}  // namespace

RecallSuite::RecallSuite() = default;
RecallSuite::~RecallSuite() = default;

std::string RecallSuite::summary() const {
  return "long-context recall: NIAH grids and RULER tasks, compressed vs dense attention on the same weights";
}

std::string RecallSuite::description() const {
  return R"(Generates NIAH depth x length grids and RULER's synthetic tasks (niah_single_1/2/3,
niah_multikey_1/2/3, niah_multivalue, niah_multiquery, vt, cwe, fwe) in the target tokenizer's tokens,
deterministically from --seed, and runs every sample under each --attention mode on the same weights.
Greedy decoding; RULER's tokens_to_generate per task (niah: 32), or --max-new-tokens.

Cases: one per (task, ctx, depth, attention); RULER tasks place needles at random depths (depth
"random"). With native and dense both requested (engine backend), one more case per cell has
attention "native-dense" with the paired comparison.

Metrics per (task, ctx, depth, attention) case:
  accuracy           RULER score in % (string_match_all: mean fraction of references found, case-insensitive)
  nulls              % of empty predictions
  prompt_tokens, completion_tokens, needle_token   means over the samples (engine: our ids; http: server usage)
  s_per_sample       wall seconds per sample under this mode
Metrics of the native-dense case:
  accuracy_native, accuracy_dense, accuracy_diff (native - dense, points)
  mcnemar_b, mcnemar_c (native right & dense wrong, and the reverse), mcnemar_p (exact binomial,
                     any number of discordant samples)
  kl_native_dense    KL(native || dense) of the next-token distributions at the answer positions (the
                     first 16 tokens of the expected answer, teacher-forced), mean over samples; _max
  top1_agreement     fraction of those positions whose argmax agrees
  kl_native_dense_<bin>, top1_agreement_<bin>   by distance of the needle to the nearest HCA block
                     boundary (hca_near < 8, hca_mid 8-31, hca_far >= 32 tokens), CSA block boundary
                     (csa_d0/1/2), and for random depths by depth quartile (depth_q1..q4)
Samples record the prompt hash, the needle's token offset and depth, its distance to the nearest CSA
and HCA block boundary (models with compressed attention), the references and the predictions.

`v4bench report RUN --svg-dir DIR` draws depth x length heatmaps of accuracy per attention mode and of
native minus dense. The table ends with RULER's average per length and effective length (> 85.6).

Templates: --template default (RULER's single-needle wording) or probe (for copy-only probe models:
no question; the prompt ends with the needle's lead-in "The special magic number for KEY is:"); or
--needle/--question/--answer-prefix with {key} and {value}. Models whose vocabulary is smaller than
the tokenizer's are refused unless --map-ids (folds ids modulo the vocabulary: plumbing only).
Numerics (engine backend): --numerics official or fp32 (default official for DeepSeek-V4 checkpoints,
fp32 otherwise), resolved and stored in the run's params and each case as "numerics".
Backends: engine (a preset or checkpoint; samples decode together on the batching scheduler) or
http (OpenAI-compatible /completions at --base-url or $V4BENCH_BASE_URL; --model is the served
name; --api-key, $V4BENCH_API_KEY or $OPENAI_API_KEY, never stored; retries 429, 5xx and dropped
connections). Over http the prompts are sized in the server's own tokens (its /tokenize) so they
fit --ctx there, unless --tokenizer names a tokenizer.json.

Example: v4bench run recall --tasks niah,ruler --model v4-probe --template probe --attention native,dense --ctx 4k,16k --depths linear:11 --n 4)";
}

void RecallSuite::add_options(CLI::App& cmd) {
  cmd.add_option("--tasks", tasks_, "niah, ruler (its eleven tasks) or task names, comma-separated")->capture_default_str();
  cmd.add_option("--model,-m", model_, "a preset or checkpoint directory (engine), or the served model name (http)");
  cmd.add_option("--attention", attention_,
                 "attention modes: native, dense, window (V4), comma-separated (default: native,dense on the engine; a server serves native)");
  cmd.add_option("--ctx", ctx_, "context lengths in target tokens, prompt + answer budget (4k, 32k)")->capture_default_str();
  cmd.add_option("--depths", depths_, "NIAH needle depths in %: a list, linear:N or sigmoid:N")->capture_default_str();
  cmd.add_option("--n", samples_, "samples per (task, ctx, depth)")->capture_default_str();
  cmd.add_option("--max-new-tokens", max_new_, "answer budget (0: the task's RULER default)")->capture_default_str();
  cmd.add_option("--template", template_, "NIAH template: default or probe")->capture_default_str();
  cmd.add_option("--needle", needle_, "NIAH needle text with {key} and {value} (overrides the template's)");
  cmd.add_option("--question", question_, "NIAH question with {key}");
  cmd.add_option("--answer-prefix", answer_prefix_, "NIAH answer prefix with {key}");
  cmd.add_option("--tokenizer", tokenizer_,
                 "tokenizer.json that sizes the prompts (default: the checkpoint's on the engine; the server's /tokenize over http, "
                 "else DeepSeek's)");
  cmd.add_flag("--map-ids", map_ids_, "fold token ids into a smaller model vocabulary (synthetic presets; scores meaningless)");
  cmd.add_option("--numerics", numerics_, std::string("engine backend: ") + kNumericsHelp);
  cmd.add_option("--backend", backend_, "engine or http")->capture_default_str();
  cmd.add_option("--base-url", base_url_, "http backend: OpenAI-compatible base URL, e.g. http://host:8000/v1")->envname("V4BENCH_BASE_URL");
  cmd.add_option("--api-key", api_key_, "http backend: bearer token (not stored)")->envname("V4BENCH_API_KEY");
  cmd.add_option("--threads", threads_, "prompt generation threads (0: all cores; results do not depend on it)")->capture_default_str();
}

json RecallSuite::params() const {
  rc::RecallParams p;
  p.tasks = rc::expand_tasks(tasks_);
  p.model = model_;
  p.attention = parse_name_list(!attention_.empty() ? attention_ : backend_ == "http" ? "native" : "native,dense", "attention mode");
  p.ctx = parse_size_list(ctx_, "context length");
  p.depths = parse_depths(depths_);
  p.samples = samples_, p.max_new_tokens = max_new_;
  p.template_name = template_, p.tokenizer = tokenizer_, p.backend = backend_, p.map_ids = map_ids_;
  if (!needle_.empty()) p.needle = needle_;
  if (!question_.empty()) p.question = question_;
  if (!answer_prefix_.empty()) p.answer_prefix = answer_prefix_;
  p.base_url = base_url_;
  // The engine's numerics, resolved now so the stored params name what ran; a server picks its own.
  if (backend_ == "http" && !numerics_.empty()) throw UsageError("--numerics applies to --backend engine (a server picks its own)");
  if (backend_ == "engine" && !model_.empty()) p.numerics = resolved_numerics_name(model_, numerics_);
  return p.to_json();
}

std::optional<BackendSpec> RecallSuite::backend_spec(const json& params, uint64_t seed) const {
  const rc::RecallParams p = rc::RecallParams::from_json(params);
  if (p.model.empty()) throw UsageError("recall needs --model (one model per run)");
  require_backend_kind(p.backend);
  BackendSpec spec;
  spec.kind = p.backend;
  spec.model = p.model;
  spec.seed = seed;
  if (p.backend == "http") {
    if (p.base_url.empty()) throw UsageError("--backend http needs --base-url (or $V4BENCH_BASE_URL)");
    parse_base_url(p.base_url);
    spec.base_url = p.base_url;
    spec.api_key = api_key_;
  } else {
    const ModelConfig cfg = resolve_model(p.model);
    for (int64_t c : p.ctx)
      if (c > cfg.max_position)
        throw UsageError(fmt::format("context {} is beyond the maximum of {} ({} tokens)", format_size(c), p.model, cfg.max_position));
    resolve_numerics_flag(cfg, p.model, stored_numerics(params));  // again: a resumed run's params come from the database
    spec.numerics = stored_numerics(params);
    spec.fold_ids = p.map_ids;
  }
  spec.tokenizer = p.tokenizer;
  return spec;
}

const rc::Generator& RecallSuite::generator(const rc::RecallParams& p, const Backend& backend) const {
  rc::NiahTemplate t = rc::niah_template(p.template_name);
  if (p.needle) t.needle = *p.needle;
  if (p.question) t.question = *p.question;
  if (p.answer_prefix) t.answer_prefix = *p.answer_prefix;
  if (t.needle.find("{value}") == std::string::npos) throw UsageError("--needle must contain {value}");
  const std::string key = fmt::format("{}|{}|{}|{}|{}", static_cast<const void*>(&backend.tokens()), t.prefix, t.needle, t.question, t.answer_prefix);
  if (!gen_ || key != gen_key_) {
    gen_ = std::make_unique<rc::Generator>(backend.tokens(), t);
    gen_key_ = key;
  }
  return *gen_;
}

std::vector<Cell> RecallSuite::plan(const json& params, uint64_t seed, Backend* be) const {
  const rc::RecallParams p = rc::RecallParams::from_json(params);
  p.validate();
  // The rest needs the model: its attention modes and vocabulary, and prompts sized in its tokens.
  if (be == nullptr) return {};
  const Capabilities caps = be->capabilities();
  for (const auto& m : p.attention)
    if (std::find(caps.attention.begin(), caps.attention.end(), parse_attention_mode(m)) == caps.attention.end())
      throw UsageError(parse_attention_mode(m) == AttentionMode::kWindow ? std::string("--attention window needs a DeepSeek-V4 model")
                                                                          : fmt::format("{} cannot run --attention {}", p.model, m));
  const rc::Generator& gen = generator(p, *be);
  if (caps.vocab > 0 && gen.tokenizer().vocab_size() > caps.vocab && !p.map_ids)
    throw UsageError(fmt::format("{} has a vocabulary of {} but the tokenizer uses ids up to {}: use a model covering the tokenizer "
                                 "(or --map-ids for plumbing runs on synthetic presets)",
                                 p.model, caps.vocab, gen.tokenizer().vocab_size() - 1));
  for (const auto& t : p.tasks)
    for (int64_t c : p.ctx) gen.check_budget(t, c, p.max_new_tokens);

  const auto has = [&](const char* m) { return std::find(p.attention.begin(), p.attention.end(), m) != p.attention.end(); };
  const bool paired = caps.logits && has("native") && has("dense");
  std::vector<Cell> cells;
  for (const auto& t : p.tasks)
    for (int64_t c : p.ctx) {
      std::vector<std::optional<double>> ds;
      if (t == "niah")
        for (double d : p.depths) ds.push_back(d);
      else
        ds.push_back(std::nullopt);  // RULER's random placement
      for (const auto& d : ds) {
        const rc::RecallCell rcell{p, t, c, d, seed};
        Cell cell;
        cell.params = rcell.to_json();
        std::vector<std::string> atts = p.attention;
        if (paired) atts.push_back(names::kPairedAttention);
        for (const auto& a : atts) {
          cell.cases.push_back({fmt::format("task={}|ctx={}|depth={}|attention={}", t, c, depth_label(rcell.depth_json()), a),
                                {{"task", t}, {"ctx", c}, {"depth", rcell.depth_json()}, {"attention", a}, {"model", p.model},
                                 {"samples", p.samples}, {"seed", seed}}});
          if (p.backend == "engine") cell.cases.back().params["numerics"] = stored_numerics(params);
        }
        cells.push_back(std::move(cell));
      }
    }
  return cells;
}

std::vector<RecallSuite::SampleResult> RecallSuite::run_cell(const rc::RecallCell& rcell, Backend& be) const {
  const rc::Generator& gen = generator(rcell.run, be);
  const auto& modes = rcell.run.attention;
  std::vector<rc::SampleSpec> specs;
  for (int i = 0; i < rcell.run.samples; ++i)
    specs.push_back({rcell.task, rcell.ctx, rcell.depth.value_or(-1), i, rcell.seed, rcell.run.max_new_tokens});
  std::vector<rc::RecallSample> generated = gen.generate_all(specs, threads_);

  const auto native = std::find(modes.begin(), modes.end(), "native") - modes.begin();
  const auto dense = std::find(modes.begin(), modes.end(), "dense") - modes.begin();
  const bool paired = be.capabilities().logits && native < static_cast<long>(modes.size()) && dense < static_cast<long>(modes.size());
  std::vector<SampleResult> cell;
  for (auto& s : generated) {
    SampleResult r;
    std::vector<int32_t> gold;
    if (paired) {
      gold = gen.tokenizer().encode(s.gold);
      if (gold.size() > kMaxAnswerPositions) gold.resize(kMaxAnswerPositions);
    }
    std::vector<std::vector<std::vector<float>>> logits(modes.size());
    for (size_t m = 0; m < modes.size(); ++m) {
      const bool want = paired && (static_cast<long>(m) == native || static_cast<long>(m) == dense);
      GenerateRequest q;
      q.prompt_ids = s.ids;
      q.prompt_text = be.kind() == "http" ? s.prompt : "";
      q.max_tokens = s.max_new_tokens;
      // Containment survives any further tokens: once every reference is in, the score is final.
      q.done = [&s](const std::string& text) { return rc::match_score(s.metric, text, s.references) >= 1; };
      q.variant.attention = parse_attention_mode(modes[m]);
      if (want) q.score = gold;
      const auto t0 = std::chrono::steady_clock::now();
      Generation g = be.generate(q);
      if (!g.ok()) throw std::runtime_error(fmt::format("sample {} ({} attention): {}", s.spec.index, modes[m], g.error));
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      r.modes.push_back({g.text, rc::match_score(s.metric, g.text, s.references), g.prompt_tokens, g.completion_tokens, secs});
      logits[m] = std::move(g.scored);
    }
    if (paired && !logits[native].empty()) {
      double kl = 0, agree = 0, kl_max = 0;
      const size_t n = std::min(logits[native].size(), logits[dense].size());
      for (size_t k = 0; k < n; ++k) {
        const auto d = compare_position(logits[native][k], logits[dense][k]);
        kl += d.kl, agree += d.top1_agree, kl_max = std::max(kl_max, d.kl);
      }
      r.kl = kl / n, r.top1 = agree / n, r.kl_max = kl_max;
    }
    r.sample = std::move(s);
    cell.push_back(std::move(r));
  }
  return cell;
}

// The CSA and HCA block lengths of the model behind `backend` (0: none, or not known over http).
static std::array<int64_t, 2> block_sizes(const Backend& backend) {
  std::array<int64_t, 2> out{0, 0};
  if (const auto* engine = dynamic_cast<const EngineBackend*>(&backend))
    for (const auto& l : engine->config().layers) {
      if (l.attn == AttnKind::kCsa) out[0] = l.compress_ratio;
      if (l.attn == AttnKind::kHca) out[1] = l.compress_ratio;
    }
  return out;
}

std::vector<CaseOutput> RecallSuite::execute(const Cell& cell, Backend* backend) {
  const rc::RecallCell rcell = rc::RecallCell::from_json(cell.params);
  const std::vector<SampleResult> results = run_cell(rcell, *backend);
  std::vector<CaseOutput> out;
  for (const Case& c : cell.cases) out.push_back(case_output(c, rcell.run, results, *backend));
  return out;
}

CaseOutput RecallSuite::case_output(const Case& c, const rc::RecallParams& run, const std::vector<SampleResult>& cell, const Backend& backend) const {
  const auto& modes = run.attention;
  const std::array<int64_t, 2> blocks = block_sizes(backend);
  const std::string att = c.params.at("attention");
  CaseOutput out;
  auto add = [&](std::string name, double v, const char* unit = "") { out.metrics.push_back({std::move(name), v, unit}); };
  auto block_fields = [&](const rc::RecallSample& s, json& j) {
    j["needle_token"] = s.needle_token;
    j["needle_depth"] = s.needle_depth;
    if (s.needle_token < 0) return;
    j["needle_tokens_back"] = static_cast<int64_t>(s.ids.size()) - s.needle_token;  // > 128: outside V4's window
    if (blocks[0] > 0) j["csa_block_dist"] = rc::block_distance(s.needle_token, blocks[0]);
    if (blocks[1] > 0) j["hca_block_dist"] = rc::block_distance(s.needle_token, blocks[1]);
  };

  if (att == names::kPairedAttention) {
    const size_t nat = std::find(modes.begin(), modes.end(), "native") - modes.begin();
    const size_t den = std::find(modes.begin(), modes.end(), "dense") - modes.begin();
    int64_t b = 0, cc = 0;
    std::vector<double> an, ad, kls, top1s, klmax;
    for (const auto& r : cell) {
      const bool okn = r.modes[nat].score >= 1, okd = r.modes[den].score >= 1;
      b += okn && !okd, cc += !okn && okd;
      an.push_back(r.modes[nat].score), ad.push_back(r.modes[den].score);
      if (r.kl >= 0) kls.push_back(r.kl), top1s.push_back(r.top1), klmax.push_back(r.kl_max);
      json j = {{"index", r.sample.spec.index}, {"native_score", r.modes[nat].score}, {"dense_score", r.modes[den].score},
                {"kl_native_dense", r.kl}, {"top1_agreement", r.top1}};
      block_fields(r.sample, j);
      out.samples.push_back({r.sample.spec.index, j});
    }
    add(names::kAccuracyNative, 100 * mean(an), "%");
    add(names::kAccuracyDense, 100 * mean(ad), "%");
    add(names::kAccuracyDiff, 100 * (mean(an) - mean(ad)), "points");
    add(names::kMcnemarB, static_cast<double>(b));
    add(names::kMcnemarC, static_cast<double>(cc));
    add(names::kMcnemarP, stats::mcnemar_exact_p(b, cc));
    if (!kls.empty()) {
      add(names::kKlNativeDense, mean(kls), "nats");
      add(names::kKlNativeDenseMax, *std::max_element(klmax.begin(), klmax.end()), "nats");
      add(names::kTop1Agreement, mean(top1s), "ratio");
    }
    // Bins: which samples fall where, by the needle's distance to block boundaries and its depth.
    std::vector<std::pair<std::string, std::function<bool(const json&)>>> bins;
    if (blocks[1] > 0) {
      bins.push_back({"hca_near", [](const json& j) { return j.contains("hca_block_dist") && j["hca_block_dist"].get<int64_t>() < 8; }});
      bins.push_back({"hca_mid", [](const json& j) {
                        return j.contains("hca_block_dist") && j["hca_block_dist"].get<int64_t>() >= 8 && j["hca_block_dist"].get<int64_t>() < 32;
                      }});
      bins.push_back({"hca_far", [](const json& j) { return j.contains("hca_block_dist") && j["hca_block_dist"].get<int64_t>() >= 32; }});
    }
    if (blocks[0] > 0)
      for (int64_t d = 0; d <= blocks[0] / 2; ++d)
        bins.push_back({fmt::format("csa_d{}", d), [d](const json& j) { return j.contains("csa_block_dist") && j["csa_block_dist"] == d; }});
    if (!c.params.at("depth").is_number())
      for (int q = 0; q < 4; ++q)
        bins.push_back({fmt::format("depth_q{}", q + 1), [q](const json& j) {
                          const double d = j["needle_depth"].get<double>();
                          return d >= 25.0 * q && (d < 25.0 * (q + 1) || (q == 3 && d <= 100));
                        }});
    for (const auto& [name, in_bin] : bins) {
      std::vector<double> k, t;
      for (const auto& s : out.samples)
        if (s.details["kl_native_dense"].get<double>() >= 0 && in_bin(s.details))
          k.push_back(s.details["kl_native_dense"]), t.push_back(s.details["top1_agreement"]);
      if (k.empty()) continue;
      add(std::string(names::kKlNativeDense) + "_" + name, mean(k), "nats");
      add(std::string(names::kTop1Agreement) + "_" + name, mean(t), "ratio");
    }
    return out;
  }

  const size_t m = std::find(modes.begin(), modes.end(), att) - modes.begin();
  std::vector<double> scores, prompt, completion, secs, needle;
  double nulls = 0;
  for (const auto& r : cell) {
    const ModeAnswer& a = r.modes[m];
    scores.push_back(a.score);
    prompt.push_back(static_cast<double>(a.prompt_tokens));
    completion.push_back(static_cast<double>(a.completion_tokens));
    secs.push_back(a.seconds);
    nulls += rc::normalize_prediction(a.prediction).empty();
    if (r.sample.needle_token >= 0) needle.push_back(static_cast<double>(r.sample.needle_token));
    json j = {{"index", r.sample.spec.index},
              {"prompt_hash", fmt::format("{:016x}", r.sample.prompt_hash)},
              {"prompt_ids", r.sample.ids.size()},
              {"haystack_units", r.sample.haystack_units},
              {"references", r.sample.references},
              {"prediction", a.prediction},
              {"score", a.score},
              {"prompt_tokens", a.prompt_tokens},
              {"completion_tokens", a.completion_tokens}};
    block_fields(r.sample, j);
    out.samples.push_back({r.sample.spec.index, j});
  }
  add(names::kAccuracy, 100 * mean(scores), "%");
  add(names::kNulls, cell.empty() ? 0 : 100 * nulls / static_cast<double>(cell.size()), "%");
  add(names::kNSamples, static_cast<double>(cell.size()));
  add(names::kPromptTokens, mean(prompt), "tokens");
  add(names::kCompletionTokens, mean(completion), "tokens");
  add(names::kSecondsPerSample, mean(secs), "s");
  if (!needle.empty()) add(names::kNeedleToken, mean(needle), "tokens");
  return out;
}

}  // namespace v4b::evals
