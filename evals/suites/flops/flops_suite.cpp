#include "evals/suites/flops/flops_suite.h"

#include <fmt/format.h>

#include "common/units.h"
#include "engine/models/cost_model.h"
#include "evals/metrics/ratio.h"
#include "evals/suites/engine_suite_params.h"
#include "evals/suites/flops/scoring.h"

namespace v4b::evals {

namespace {
namespace names = schema::flops;
}  // namespace

std::string FlopsSuite::summary() const { return "decode FLOPs per token counted by the engine, beside the analytic model"; }

std::string FlopsSuite::description() const {
  return R"(Runs each model to ctx - 1 tokens (seeded synthetic ids, one growing session), then counts the
FLOPs (2 per multiply-add) of the decode step that appends the ctx-th token, by category, beside the
analytic model; raw and FP8-equivalent (FP8/FP4 GEMMs x1, BF16/FP32 work x2, FP4 indexer scoring
x0.5) and as ratios to the baseline's analytic figures. A case whose counters differ from the
analytic model by more than 1% in any category is stored as failed. Published models (v4-pro,
v4-flash, v3.2, ...) are projected analytically (projected = 1).

--numerics picks the arithmetic of the engine's sessions, resolved per model and stored in the run's
params ("numerics": {model: fp32|official}) and in each case; they run BF16 activations either way.

Metrics per case (model, ctx):
  flops, flops_analytic, flops_fp8eq, flops_fp8eq_analytic, flops_ratio (fp8eq vs baseline),
  flops_raw_ratio, projected, flops_<category> and flops_<category>_analytic for weight_gemm,
  attention_core, indexer_score, compressor, router, mhc, small_matmul; flops_elementwise (counted
  only: norms, RoPE, softmax, pooling, top-k are not in the analytic model)

Example: v4bench run flops --model v4-tiny,v4-pro,v4-flash --vs v3.2 --ctx 4k,32k)";
}

void FlopsSuite::add_options(CLI::App& cmd) {
  cmd.add_option("--model,-m", models_, "comma-separated presets or checkpoint directories")->capture_default_str();
  cmd.add_option("--vs", baseline_, "baseline model for the ratios (analytic)")->capture_default_str();
  cmd.add_option("--ctx", ctx_, "comma-separated context lengths (4096, 4k, 1m)")->capture_default_str();
  add_engine_suite_numerics_option(cmd, numerics_);
}

nlohmann::json FlopsSuite::params() const { return EngineSuiteParams::from_flags(models_, baseline_, ctx_, numerics_).to_json(); }

std::vector<Cell> FlopsSuite::plan(const nlohmann::json& params, uint64_t seed, Backend*) const {
  EngineSuiteParams p = EngineSuiteParams::from_json(params);
  p.validate();
  std::sort(p.ctx.begin(), p.ctx.end());  // one growing session per model
  std::vector<Case> cases;
  for (const auto& m : p.models)
    for (int64_t ctx : p.ctx)
      cases.push_back({fmt::format("model={}|ctx={}", m, ctx), EngineSuiteCase{m, p.baseline, ctx, "", p.numerics_of(m), seed}.to_json()});
  return cells_of(std::move(cases));
}

CaseOutput FlopsSuite::measure(const Case& c, Backend*) {
  const EngineSuiteCase ec = EngineSuiteCase::from_json(c.params);
  const std::string& model = ec.model;
  const int64_t ctx = ec.ctx;
  if (!runs_) runs_ = std::make_unique<EngineRuns>(ec.seed);
  const DecodeFlops analytic = decode_flops(runs_->config(model), ctx);
  const DecodeFlops base = decode_flops(runs_->config(ec.baseline), ctx);

  DecodeFlops measured = analytic;
  int64_t elementwise = 0;
  const bool runnable = is_runnable(model);
  if (runnable) {
    const Numerics numerics = parse_numerics(ec.numerics);
    Session& s = runs_->at_depth(model, {AttentionMode::kNative, KvFormat::kBf16, true, numerics}, ctx - 1);
    s.reset_counters();
    s.decode(runs_->token_at(model, ctx - 1));
    for (int k = 0; k < kNumFlopCategories; ++k) measured.by_category[k] = s.counters().get(static_cast<FlopCategory>(k)).flops;
    elementwise = measured[FlopCategory::kElementwise];
    measured[FlopCategory::kElementwise] = 0;  // reported apart: the analytic model has no such term
  }
  CaseOutput out;
  auto add = [&](std::string name, double v, const char* unit) { out.metrics.push_back({std::move(name), v, unit}); };
  add(names::kProjected, runnable ? 0 : 1, "");
  add(names::kFlops, measured.raw(), "flop");
  add(names::kFlopsAnalytic, analytic.raw(), "flop");
  add(names::kFlopsFp8eq, measured.fp8eq(), "flop");
  add(names::kFlopsFp8eqAnalytic, analytic.fp8eq(), "flop");
  add(names::kFlopsRatio, ratio(measured.fp8eq(), base.fp8eq()), "ratio");
  add(names::kFlopsRawRatio, ratio(measured.raw(), base.raw()), "ratio");
  if (runnable) add(names::kFlopsElementwise, elementwise, "flop");
  for (int k = 0; k < kNumFlopCategories; ++k) {
    const auto cat = static_cast<FlopCategory>(k);
    if (cat == FlopCategory::kElementwise || (measured[cat] == 0 && analytic[cat] == 0)) continue;
    add(fmt::format("flops_{}", flop_category_name(cat)), measured[cat], "flop");
    add(fmt::format("flops_{}_analytic", flop_category_name(cat)), analytic[cat], "flop");
  }
  if (const std::string mismatch = flops::flops_mismatch(measured, analytic); !mismatch.empty())
    out.failure = "decode FLOPs differ from the analytic model by more than 1%: " + mismatch;
  return out;
}

}  // namespace v4b::evals
