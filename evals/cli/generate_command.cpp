#include "evals/cli/generate_command.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "common/units.h"
#include "engine/io/tokenizer.h"
#include "engine/kernels/cpu/machine_probe.h"
#include "engine/models/presets.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/sampler.h"
#include "evals/backends/engine_backend.h"
#include "evals/backends/logprobs.h"
#include "evals/cli/cli_util.h"
#include "evals/suites/kld/npy.h"
#include "evals/suites/numerics.h"

namespace v4b::cli {

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The chosen token's log-probability and the k most likely tokens', from one logits row.
nlohmann::json top_logprobs(std::span<const float> logits, int32_t chosen, int64_t k) {
  const evals::PositionLogprobs lp = evals::logprobs_at(logits, chosen, k);
  nlohmann::json top = nlohmann::json::array();
  for (const auto& t : lp.top) top.push_back({t.id, t.logprob});
  return {{"token", chosen}, {"logprob", lp.chosen.logprob}, {"top", top}};
}

}  // namespace

std::unique_ptr<GenerateCommand> add_generate_command(CLI::App& parent) {
  auto cmd = std::make_unique<GenerateCommand>();
  CLI::App* a = cmd->app = parent.add_subcommand("generate", "run the engine on a prompt and report speed");
  a->add_option("--model,-m", cmd->model, "checkpoint directory or synthetic preset (" + synthetic_presets() + ")")->required();
  auto* text = a->add_option("--prompt", cmd->prompt, "prompt text, tokenized with the model's tokenizer (BOS prepended)");
  auto* ids = a->add_option("--prompt-ids", cmd->prompt_ids, "prompt as comma-separated token ids");
  auto* len = a->add_option("--prompt-len", cmd->prompt_len, "a prompt of N seeded pseudo-random token ids (for speed runs at depth)")
                  ->check(CLI::PositiveNumber);
  text->excludes(ids)->excludes(len);
  ids->excludes(text)->excludes(len);
  len->excludes(text)->excludes(ids);
  a->add_option("--max-tokens,-n", cmd->max_tokens, "tokens to generate")->capture_default_str()->check(CLI::NonNegativeNumber);
  a->add_option("--attention", cmd->attention, "native, dense or window (V4 only)")->capture_default_str();
  a->add_option("--kv-format", cmd->kv_format, "KV storage: bf16 or fp8")->capture_default_str();
  a->add_option("--numerics", cmd->numerics, std::string(evals::kNumericsHelp));
  a->add_flag("--bf16-activations", cmd->bf16_activations,
              "weight matmuls read BF16-rounded activations (BF16 dot products on AVX512-BF16 CPUs; default FP32; implied by official numerics)");
  a->add_option("--temperature", cmd->temperature, "0 = greedy")->capture_default_str();
  a->add_option("--top-k", cmd->top_k, "sample among the k most likely (0 = all)")->capture_default_str();
  a->add_option("--top-p", cmd->top_p, "nucleus mass")->capture_default_str();
  a->add_option("--seed", cmd->seed, "sampling seed (and synthetic weights seed for presets)")->capture_default_str();
  a->add_option("--threads", cmd->threads, "threads (0 = all cores)")->capture_default_str();
  a->add_option("--format", cmd->format, "output format")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  a->add_option("--logprobs", cmd->logprobs, "per generated token, the K most likely tokens with log-probabilities")
      ->check(CLI::NonNegativeNumber);
  a->add_option("--dump-logits", cmd->dump_logits,
                "write the float32 logits after every prompt and generated token to FILE.npy [positions, vocab]");
  a->footer(
      "\nPrints the generated ids, prefill and decode tok/s, the bytes the decode steps moved per second\n"
      "(weights + KV + activations, from the engine's counters) against the probed DRAM bandwidth, and\n"
      "a hash of the final logits so two runs can be compared at a glance.\n"
      "JSON: {tokens, prompt_tokens, tok_per_s, prefill_tok_per_s, gb_per_s, logits_hash, kv_bytes, numerics, ...,\n"
      "       logprobs: [{token, logprob, top: [[id, logprob], ...]}] with --logprobs K}\n"
      "--dump-logits streams the rows (numpy.load reads the file; `v4bench kld --base FILE.npy` compares\n"
      "against it): row i holds the logits after token i of prompt + generated tokens.");
  return cmd;
}

int run_generate_command(const GenerateCommand& cmd) {
  const AttentionMode mode = parse_attention_mode(cmd.attention);
  const KvFormat kv = parse_kv_format(cmd.kv_format);
  if (cmd.prompt.empty() && cmd.prompt_ids.empty() && cmd.prompt_len == 0)
    throw UsageError("generate needs --prompt TEXT, --prompt-ids 1,2,3 or --prompt-len N");
  if (cmd.temperature < 0 || cmd.top_p <= 0 || cmd.top_p > 1 || cmd.top_k < 0)
    throw UsageError("sampling needs temperature >= 0, 0 < top-p <= 1 and top-k >= 0");
  // Resolved from the config alone, before any weights are read or synthesised.
  const ModelConfig m = resolve_model(cmd.model);
  const Numerics numerics = evals::resolve_numerics_flag(m, cmd.model, cmd.numerics);
  const bool bf16_activations = cmd.bf16_activations || numerics == Numerics::kOfficial;  // official implies them
  if (!cmd.dump_logits.empty() && !cmd.dump_logits.ends_with(".npy")) throw UsageError("--dump-logits needs a FILE.npy path");
  if (mode == AttentionMode::kWindow && !m.is_v4()) throw UsageError("--attention window needs a DeepSeek-V4 model");

  evals::BackendSpec spec;
  spec.model = cmd.model;
  spec.seed = cmd.seed;
  spec.numerics = std::string(numerics_name(numerics));
  spec.threads = cmd.threads;
  spec.bf16_activations = cmd.bf16_activations;
  spec.max_active = 1;
  // The whole prompt in one step, as a plain prefill would take it; in bounded blocks when every row is dumped.
  spec.prefill_chunk = cmd.dump_logits.empty() ? m.max_position : evals::logits_block_rows(m.vocab);
  evals::EngineBackend engine(spec);

  std::vector<int32_t> prompt;
  const bool text_prompt = cmd.prompt_ids.empty() && cmd.prompt_len == 0;
  if (!cmd.prompt_ids.empty()) {
    prompt = parse_ids(cmd.prompt_ids, "--prompt-ids");
  } else if (cmd.prompt_len > 0) {
    std::mt19937_64 rng(cmd.seed);
    for (int64_t i = 0; i < cmd.prompt_len; ++i) prompt.push_back(static_cast<int32_t>(rng() % m.vocab));
  } else {
    const Tokenizer& tok = engine.tokenizer();  // the one that decodes the answer too
    if (tok.n_tokens() > m.vocab)
      throw UsageError(fmt::format("the tokenizer has {} tokens but {} has a vocabulary of {}: pass --prompt-ids", tok.n_tokens(),
                                   cmd.model, m.vocab));
    prompt = tok.encode(cmd.prompt, /*add_bos=*/true);
  }
  for (int32_t id : prompt)
    if (id >= m.vocab) throw UsageError(fmt::format("token id {} is outside the vocabulary of {} (0..{})", id, cmd.model, m.vocab - 1));
  std::optional<evals::NpyWriter> dump;
  if (!cmd.dump_logits.empty()) dump.emplace(cmd.dump_logits, m.vocab);

  // One request through the engine backend's scheduler; its logits tap feeds the dump, the
  // log-probabilities and the final hash.
  evals::GenerateRequest q;
  q.prompt_ids = prompt;
  q.max_tokens = cmd.max_tokens;
  q.sampling = {cmd.temperature, cmd.top_k, cmd.top_p, cmd.seed};
  q.ignore_eos = true;
  q.variant = {mode, kv};
  std::vector<float> last_row;
  nlohmann::json logprobs = nlohmann::json::array();
  q.tap.prompt = q.tap.final = dump.has_value();
  q.tap.fn = [&](std::span<const float> rows, int32_t drawn) {
    if (dump) dump->append(rows);
    if (drawn >= 0 && cmd.logprobs > 0) logprobs.push_back(top_logprobs(rows, drawn, cmd.logprobs));
    if (!rows.empty()) last_row.assign(rows.end() - m.vocab, rows.end());
  };
  const double t0 = now_s();
  const evals::Generation g = engine.generate(q);
  const double wall_s = now_s() - t0;
  if (!g.ok()) throw std::runtime_error(g.error);
  if (dump) dump->close();
  const std::vector<int32_t>& out = g.ids;
  // Prefill: until the first token (or all of it, with no token asked for); decode: first to last token.
  const double prefill_s = out.empty() ? wall_s : g.ttft_s, decode_s = out.empty() ? 0 : g.e2e_s - g.ttft_s;
  const int64_t steps = std::max<int64_t>(0, cmd.max_tokens - 1);
  const OpCount work = g.decode_work;
  const double tok_s = steps > 0 && decode_s > 0 ? steps / decode_s : 0;
  const double gbps = decode_s > 0 ? work.bytes / decode_s / 1e9 : 0;
  const double gflops = decode_s > 0 ? work.flops / decode_s / 1e9 : 0;
  const auto ceil = load_ceilings();
  const std::string hash = fmt::format("{:016x}", logits_hash(last_row));
  const KvBytes kvb = g.kv_bytes;

  if (cmd.format == "json") {
    nlohmann::json j = {{"model", cmd.model}, {"attention", cmd.attention}, {"kv_format", cmd.kv_format}, {"prompt_tokens", prompt.size()},
                        {"tokens", out}, {"text", text_prompt ? g.text : ""}, {"tok_per_s", tok_s}, {"prefill_tok_per_s", prefill_s > 0 ? prompt.size() / prefill_s : 0},
                        {"gb_per_s", gbps}, {"gflop_per_s", gflops}, {"logits_hash", hash}, {"kv_bytes", kvb.cache()},
                        {"kv_state_bytes", kvb[KvKind::kCompressorState]}, {"threads", engine.threads()},
                        {"bf16_activations", bf16_activations}, {"numerics", std::string(numerics_name(numerics))}};
    if (ceil) j["pct_dram"] = 100 * gbps / ceil->read_gbps_dram;
    if (cmd.logprobs > 0) j["logprobs"] = logprobs;
    if (dump) j["dump_logits"] = {{"path", cmd.dump_logits}, {"rows", dump->rows()}, {"vocab", m.vocab}};
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("tokens: {}\n", fmt::join(out, ","));
  if (text_prompt) fmt::print("text: {}\n", g.text);
  fmt::print("prefill: {} tokens in {:.3f} s ({:.1f} tok/s)\n", prompt.size(), prefill_s, prompt.size() / std::max(prefill_s, 1e-9));
  fmt::print("decode:  {} steps in {:.3f} s ({:.2f} tok/s), {:.2f} GB/s{}, {:.1f} GFLOP/s\n", steps, decode_s, tok_s, gbps,
             ceil ? fmt::format(" ({:.0f}% of {:.1f} GB/s probed)", 100 * gbps / ceil->read_gbps_dram, ceil->read_gbps_dram) : "",
             gflops);
  fmt::print("kv: {} bytes ({} attention, {} kv format), state {} bytes; {} numerics; logits hash {}\n", kvb.cache(), cmd.attention,
             cmd.kv_format, kvb[KvKind::kCompressorState], numerics_name(numerics), hash);
  for (size_t i = 0; i < logprobs.size(); ++i) {
    std::string top;
    for (const auto& t : logprobs[i]["top"]) top += fmt::format(" {}:{:.3f}", t[0].get<int>(), t[1].get<double>());
    fmt::print("logprobs[{}]: token {} ({:.3f}); top{}\n", i, logprobs[i]["token"].get<int>(), logprobs[i]["logprob"].get<double>(), top);
  }
  if (dump) fmt::print("logits: {} rows x {} written to {}\n", dump->rows(), m.vocab, cmd.dump_logits);
  return 0;
}

}  // namespace v4b::cli
