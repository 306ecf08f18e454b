#include "evals/suites/analyze/analyze_suite.h"

#include <fmt/format.h>

#include "common/errors.h"
#include "common/units.h"
#include "engine/models/cost_model.h"
#include "engine/models/presets.h"
#include "evals/metrics/ratio.h"
#include "evals/suites/engine_suite_params.h"

namespace v4b::evals {

namespace {
namespace names = schema::analyze;
}  // namespace

std::string AnalyzeSuite::summary() const {
  return "analytic KV-cache bytes and decode FLOPs per token of each model vs a baseline";
}

std::string AnalyzeSuite::description() const {
  return R"(Projects, from the model configuration alone, the per-sequence KV cache and the FLOPs of one
decode step at each context length, and their ratio to a baseline model (spec §3-§4).

KV bytes count the cache proper (window, compressed rows, index keys, MLA latents, GQA K/V) of the
main trunk; the fixed compressor state is reported apart. FLOPs are those of the decode step that
appends the ctx-th token (2 per multiply-add); "fp8eq" weights FP8/FP4 GEMMs x1, BF16/FP32 work x2
and FP4 indexer scoring x0.5, the convention that reproduces the DeepSeek-V4 report.

Metrics per case (model, ctx, kv_format):
  kv_bytes, kv_bytes_per_token, kv_ratio, kv_state_bytes,
  kv_bytes_<kind> for kind in window, compressed_csa, compressed_hca, index_keys, mla_latent, gqa_kv
  flops_raw, flops_fp8eq, flops_raw_ratio, flops_fp8eq_ratio,
  flops_<category> for weight_gemm, attention_core, indexer_score, compressor, router, mhc, small_matmul
  params_total, params_mtp, params_active, beyond_max_ctx (1 when ctx exceeds the model's limit)
  baseline_beyond_max_ctx, baseline_kv_bytes, baseline_flops_raw, baseline_flops_fp8eq

Models: presets (v4-flash, v4-pro, v3.2, v3, llama3-8b, llama3-70b) or checkpoint directories.
Example: v4bench analyze --model v4-pro,v4-flash --vs v3.2 --ctx 4k,128k,1m --kv-format fp8)";
}

void AnalyzeSuite::add_options(CLI::App& cmd) {
  cmd.add_option("--model,-m", models_, "comma-separated presets or checkpoint directories")->capture_default_str();
  cmd.add_option("--vs", baseline_, "baseline model the ratios are taken against")->capture_default_str();
  cmd.add_option("--ctx", ctx_, "comma-separated context lengths (4096, 4k, 1m)")->capture_default_str();
  cmd.add_option("--kv-format", kv_format_, "KV storage format: fp8 (production layouts) or bf16 (reference)")
      ->capture_default_str();
}

AnalyzeParams AnalyzeParams::from_json(const nlohmann::json& j) {
  AnalyzeParams p;
  try {
    p.models = j.value("models", p.models);
    p.baseline = j.value("baseline", p.baseline);
    p.ctx = j.value("ctx", p.ctx);
    p.kv_format = j.value("kv_format", p.kv_format);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("analyze parameters of the wrong type: {}", e.what()));
  }
  return p;
}

nlohmann::json AnalyzeParams::to_json() const { return {{"models", models}, {"baseline", baseline}, {"ctx", ctx}, {"kv_format", kv_format}}; }

void AnalyzeParams::validate() const {
  parse_kv_format(kv_format);
  resolve_model(baseline);
  for (const auto& m : models) resolve_model(m);  // fail before anything is stored
  for (int64_t c : ctx)
    if (c <= 0) throw UsageError("context lengths must be positive integers");
}

nlohmann::json AnalyzeSuite::params() const {
  return AnalyzeParams{parse_name_list(models_, "model"), baseline_, parse_size_list(ctx_, "context length"), kv_format_}.to_json();
}

const ModelConfig& AnalyzeSuite::model(const std::string& name) {
  auto it = configs_.find(name);
  if (it == configs_.end()) it = configs_.emplace(name, resolve_model(name)).first;
  return it->second;
}

std::vector<Cell> AnalyzeSuite::plan(const nlohmann::json& params, uint64_t, Backend*) const {
  const AnalyzeParams p = AnalyzeParams::from_json(params);
  p.validate();
  std::vector<Case> cases;
  for (const auto& m : p.models)
    for (int64_t ctx : p.ctx)
      cases.push_back({fmt::format("model={}|ctx={}|kv_format={}", m, ctx, p.kv_format),
                       {{"model", m}, {"baseline", p.baseline}, {"ctx", ctx}, {"kv_format", p.kv_format}}});
  return cells_of(std::move(cases));
}

CaseOutput AnalyzeSuite::measure(const Case& c, Backend*) {
  const EngineSuiteCase ec = EngineSuiteCase::from_json(c.params);  // the kv suite's case shape, without numerics
  const ModelConfig& m = model(ec.model);
  const ModelConfig& base = model(ec.baseline);
  const int64_t ctx = ec.ctx;
  const KvFormat format = parse_kv_format(ec.kv_format);

  const KvBytes kv = kv_bytes(m, ctx, format), base_kv = kv_bytes(base, ctx, format);
  const DecodeFlops fl = decode_flops(m, ctx), base_fl = decode_flops(base, ctx);
  const ParamCounts pc = param_counts(m);

  CaseOutput out;
  auto add = [&](std::string name, double v, const char* unit) { out.metrics.push_back({std::move(name), v, unit}); };
  add(names::kKvBytes, kv.cache(), "bytes");
  add(names::kKvBytesPerToken, ratio(kv.cache(), ctx), "bytes");
  add(names::kKvRatio, ratio(kv.cache(), base_kv.cache()), "ratio");
  add(names::kKvStateBytes, kv[KvKind::kCompressorState], "bytes");
  for (int k = 0; k < kNumKvKinds; ++k) {
    const auto kind = static_cast<KvKind>(k);
    if (kind != KvKind::kCompressorState && kv[kind] > 0) add(fmt::format("kv_bytes_{}", kv_kind_name(kind)), kv[kind], "bytes");
  }
  add(names::kFlopsRaw, fl.raw(), "flop");
  add(names::kFlopsFp8eq, fl.fp8eq(), "flop");
  add(names::kFlopsRawRatio, ratio(fl.raw(), base_fl.raw()), "ratio");
  add(names::kFlopsFp8eqRatio, ratio(fl.fp8eq(), base_fl.fp8eq()), "ratio");
  for (int k = 0; k < kNumFlopCategories; ++k) {
    const auto cat = static_cast<FlopCategory>(k);
    if (fl[cat] > 0) add(fmt::format("flops_{}", flop_category_name(cat)), fl[cat], "flop");
  }
  add(names::kParamsTotal, pc.total, "params");
  add(names::kParamsMtp, pc.mtp, "params");
  add(names::kParamsActive, pc.active, "params");
  add(names::kBeyondMaxCtx, ctx > m.max_position ? 1 : 0, "");
  add(names::kBaselineBeyondMaxCtx, ctx > base.max_position ? 1 : 0, "");
  add(names::kBaselineKvBytes, base_kv.cache(), "bytes");
  add(names::kBaselineFlopsRaw, base_fl.raw(), "flop");
  add(names::kBaselineFlopsFp8eq, base_fl.fp8eq(), "flop");
  return out;
}

}  // namespace v4b::evals
