#include "evals/suites/kv/kv_suite.h"

#include <chrono>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/units.h"
#include "engine/models/cost_model.h"
#include "engine/models/presets.h"
#include "evals/metrics/ratio.h"
#include "evals/suites/kv/scoring.h"
#include "evals/suites/numerics.h"

namespace v4b::evals {

namespace {
namespace names = schema::kv;
}  // namespace

std::string KvSuite::summary() const { return "KV-cache bytes measured by the engine at each context, beside the analytic model"; }

std::string KvSuite::description() const {
  return R"(Runs each model to every context in the grid (prefilling seeded synthetic token ids into one
growing session per storage format) and records the bytes its caches hold, by kind, beside the
analytic model (engine/models/cost_model.h) and as a ratio to the baseline's analytic bytes. A case
whose measured bytes differ from the analytic model is stored as failed. Models the engine cannot run
here (v4-pro, v4-flash, v3.2, v3, llama3-*) are projected analytically (projected = 1).

--numerics picks the arithmetic of the engine's sessions, resolved per model and stored in the run's
params ("numerics": {model: fp32|official}) and in each case; the fill runs BF16 activations either way.

Metrics per case (model, ctx, kv_format):
  kv_bytes, kv_bytes_analytic, kv_bytes_per_token, kv_ratio, kv_state_bytes, projected,
  kv_bytes_<kind> and kv_bytes_<kind>_analytic for window, compressed_csa, compressed_hca,
  index_keys, mla_latent, gqa_kv; fill_s and fill_tok_per_s (time to reach this depth from the last)

Example: v4bench run kv --model v4-tiny,v4-pro --vs v3.2 --ctx 4k,32k --kv-format bf16,fp8)";
}

void KvSuite::add_options(CLI::App& cmd) {
  cmd.add_option("--model,-m", models_, "comma-separated presets or checkpoint directories")->capture_default_str();
  cmd.add_option("--vs", baseline_, "baseline model for the ratios (analytic)")->capture_default_str();
  cmd.add_option("--ctx", ctx_, "comma-separated context lengths (4096, 4k, 1m)")->capture_default_str();
  cmd.add_option("--kv-format", formats_, "storage formats: bf16, fp8 or both")->capture_default_str();
  add_engine_suite_numerics_option(cmd, numerics_);
}

nlohmann::json KvSuite::params() const {
  EngineSuiteParams p = EngineSuiteParams::from_flags(models_, baseline_, ctx_, numerics_);
  p.kv_formats = parse_name_list(formats_, "KV format");
  return p.to_json();
}

std::vector<Cell> KvSuite::plan(const nlohmann::json& params, uint64_t seed, Backend*) const {
  EngineSuiteParams p = EngineSuiteParams::from_json(params);
  p.validate();
  std::sort(p.ctx.begin(), p.ctx.end());  // one growing session per (model, format)
  std::vector<Case> cases;
  for (const auto& m : p.models)
    for (const auto& f : p.kv_formats)
      for (int64_t ctx : p.ctx)
        cases.push_back({fmt::format("model={}|kv_format={}|ctx={}", m, f, ctx),
                         EngineSuiteCase{m, p.baseline, ctx, f, p.numerics_of(m), seed}.to_json()});
  return cells_of(std::move(cases));
}

CaseOutput KvSuite::measure(const Case& c, Backend*) {
  const EngineSuiteCase ec = EngineSuiteCase::from_json(c.params);
  const std::string& model = ec.model;
  const int64_t ctx = ec.ctx;
  const KvFormat format = parse_kv_format(ec.kv_format);
  if (!runs_) runs_ = std::make_unique<EngineRuns>(ec.seed);
  const ModelConfig& cfg = runs_->config(model);
  const KvBytes analytic = kv_bytes(cfg, ctx, format);
  const KvBytes base = kv_bytes(runs_->config(ec.baseline), ctx, format);

  CaseOutput out;
  auto add = [&](std::string name, double v, const char* unit) { out.metrics.push_back({std::move(name), v, unit}); };
  KvBytes measured = analytic;
  const bool runnable = is_runnable(model);
  if (runnable) {
    const auto t0 = std::chrono::steady_clock::now();
    int64_t filled = 0;
    const Numerics numerics = parse_numerics(ec.numerics);
    Session& s = runs_->at_depth(model, {AttentionMode::kNative, format, true, numerics}, ctx, &filled);
    const double fill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    measured = s.kv_bytes();
    add(names::kFillSeconds, fill_s, "s");
    add(names::kFillTokPerS, fill_s > 0 ? filled / fill_s : 0, "tok/s");
  }
  add(names::kProjected, runnable ? 0 : 1, "");
  add(names::kKvBytes, measured.cache(), "bytes");
  add(names::kKvBytesAnalytic, analytic.cache(), "bytes");
  add(names::kKvBytesPerToken, double(measured.cache()) / ctx, "bytes");
  add(names::kKvRatio, ratio(measured.cache(), base.cache()), "ratio");
  add(names::kKvStateBytes, measured[KvKind::kCompressorState], "bytes");
  for (int k = 0; k < kNumKvKinds; ++k) {
    const auto kind = static_cast<KvKind>(k);
    if (kind == KvKind::kCompressorState || (measured[kind] == 0 && analytic[kind] == 0)) continue;
    add(fmt::format("kv_bytes_{}", kv_kind_name(kind)), measured[kind], "bytes");
    add(fmt::format("kv_bytes_{}_analytic", kv_kind_name(kind)), analytic[kind], "bytes");
  }
  if (const std::string mismatch = kv::kv_mismatch(measured, analytic); !mismatch.empty())
    out.failure = "KV bytes differ from the analytic model: " + mismatch;
  return out;
}

}  // namespace v4b::evals
