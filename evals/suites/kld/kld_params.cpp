#include "evals/suites/kld/kld_params.h"

#include <fmt/format.h>

#include "common/errors.h"
#include "engine/models/cost_model.h"
#include "engine/runtime/engine.h"
#include "evals/suites/param_json.h"

namespace v4b::evals {

namespace {
constexpr const char* kSuite = "kld";
}  // namespace

bool is_logits_file(const std::string& source) { return source.ends_with(".npy"); }

KldParams KldParams::from_json(const nlohmann::json& j) {
  KldParams p;
  p.base = param_or(j, "base", p.base, kSuite);
  p.base_attention = param_or(j, "base_attention", p.base_attention, kSuite);
  p.base_kv_format = param_or(j, "base_kv_format", p.base_kv_format, kSuite);
  p.base_numerics = param_or(j, "base_numerics", p.base_numerics, kSuite);
  p.cand = param_or(j, "cand", p.cand, kSuite);
  p.cand_attentions = param_or(j, "cand_attentions", p.cand_attentions, kSuite);
  p.cand_kv_formats = param_or(j, "cand_kv_formats", p.cand_kv_formats, kSuite);
  if (j.contains("cand_numerics_list")) p.cand_numerics_list = param_or(j, "cand_numerics_list", std::vector<std::string>{}, kSuite);
  p.tokens = param_or(j, "tokens", p.tokens, kSuite);
  p.score_from = param_or(j, "score_from", p.score_from, kSuite);
  p.bin = param_or(j, "bin", p.bin, kSuite);
  p.text = param_or(j, "text", p.text, kSuite);
  p.ids = param_or(j, "ids", p.ids, kSuite);
  p.haystack = param_or(j, "haystack", p.haystack, kSuite);
  return p;
}

nlohmann::json KldParams::to_json() const {
  nlohmann::json j = {{"base", base},           {"base_attention", base_attention}, {"base_kv_format", base_kv_format},
                      {"cand", cand},           {"cand_attentions", cand_attentions}, {"cand_kv_formats", cand_kv_formats},
                      {"tokens", tokens},       {"score_from", score_from},          {"bin", bin}};
  if (!base_numerics.empty()) j["base_numerics"] = base_numerics;
  if (cand_numerics_list) j["cand_numerics_list"] = *cand_numerics_list;
  if (!text.empty()) j["text"] = text;
  if (!ids.empty()) j["ids"] = ids;
  if (!haystack.empty()) j["haystack"] = haystack;
  return j;
}

void KldParams::validate() const {
  for (const auto& [flag, src] : {std::pair{"--base", base}, std::pair{"--cand", cand}})
    if (src.empty()) throw UsageError(fmt::format("{} is required: a model or a logits FILE.npy", flag));
  if (tokens <= 0) throw UsageError("--tokens must be positive");
  if (score_from < 0 || score_from >= tokens) throw UsageError(fmt::format("--score-from must be in [0, {})", tokens));
  if (bin <= 0) throw UsageError("--bin must be positive");
  if (int(!text.empty()) + int(!ids.empty()) + int(!haystack.empty()) != 1)
    throw UsageError("the sequence needs exactly one of --text, --haystack and --ids");
  parse_attention_mode(base_attention);
  parse_kv_format(base_kv_format);
  for (const auto& a : cand_attentions) parse_attention_mode(a);
  for (const auto& f : cand_kv_formats) parse_kv_format(f);
  if (cand_attentions.empty() || cand_kv_formats.empty()) throw UsageError("--cand-attention and --cand-kv-format need at least one value");
  if (cand_numerics_list && cand_numerics_list->empty()) throw UsageError("--cand-numerics needs at least one value");
}

std::string KldParams::base_side_numerics() const {
  if (is_logits_file(base)) return "";
  return base_numerics.empty() ? "fp32" : base_numerics;
}

std::vector<std::string> KldParams::cand_side_numerics() const {
  if (cand_numerics_list) return *cand_numerics_list;
  return {is_logits_file(cand) ? "" : "fp32"};
}

KldCase KldCase::from_json(const nlohmann::json& j) {
  KldCase c;
  c.run = KldParams::from_json(j);
  c.cand_attention = param_or(j, "cand_attention", std::string(), kSuite);
  c.cand_kv_format = param_or(j, "cand_kv_format", std::string(), kSuite);
  c.cand_numerics = param_or(j, "cand_numerics", std::string(), kSuite);
  c.seed = param_or(j, "seed", uint64_t{0}, kSuite);
  return c;
}

nlohmann::json KldCase::to_json() const {
  nlohmann::json j = run.to_json();
  j["cand_attention"] = cand_attention;
  j["cand_kv_format"] = cand_kv_format;
  if (!cand_numerics.empty()) j["cand_numerics"] = cand_numerics;
  j["seed"] = seed;
  return j;
}

std::string KldCase::key() const {
  std::string key = fmt::format("cand_attention={}|cand_kv_format={}", cand_attention, cand_kv_format);
  if (run.cand_numerics_list) key += "|cand_numerics=" + cand_numerics;
  return key;
}

std::vector<KldCase> kld_cases(const KldParams& p, uint64_t seed) {
  std::vector<KldCase> cases;
  for (const auto& a : p.cand_attentions)
    for (const auto& f : p.cand_kv_formats)
      for (const auto& n : p.cand_side_numerics()) cases.push_back({p, a, f, n, seed});
  return cases;
}

}  // namespace v4b::evals
