#include "evals/cli/serve_command.h"

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <fmt/format.h>

#include "common/errors.h"
#include "engine/core/thread_pool.h"
#include "engine/io/tokenizer.h"
#include "engine/models/cost_model.h"
#include "engine/models/presets.h"
#include "engine/runtime/engine.h"
#include "evals/serve/openai_server.h"
#include "evals/suites/numerics.h"

namespace v4b::cli {

namespace {

Tokenizer tokenizer_for(const std::string& model, const std::string& path) {
  if (!path.empty()) return Tokenizer::load(path);
  return Tokenizer::for_checkpoint(model);
}

}  // namespace

std::unique_ptr<ServeCommand> add_serve_command(CLI::App& parent) {
  auto cmd = std::make_unique<ServeCommand>();
  CLI::App* a = cmd->app = parent.add_subcommand("serve", "OpenAI-compatible HTTP server on the engine (completions, chat, streaming)");
  a->add_option("--model,-m", cmd->model, "checkpoint directory or synthetic preset")->required();
  a->add_option("--host", cmd->host, "address to listen on")->capture_default_str();
  a->add_option("--port", cmd->port, "port (0 = any free port, printed at start)")->capture_default_str()->check(CLI::Range(0, 65535));
  a->add_option("--served-model-name", cmd->name, "the model id clients send (default: --model as given)");
  a->add_option("--max-model-len", cmd->max_model_len, "prompt + completion tokens per request (default: the model's maximum)")
      ->check(CLI::NonNegativeNumber);
  a->add_option("--max-active,--max-num-seqs", cmd->max_active, "requests decoded together; more wait in a FIFO queue")
      ->capture_default_str()->check(CLI::PositiveNumber);
  a->add_option("--max-waiting", cmd->max_waiting, "queued requests beyond which new ones get 503")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  a->add_option("--prefill-chunk", cmd->prefill_chunk, "prompt tokens per scheduler step, all requests together")->capture_default_str()->check(CLI::PositiveNumber);
  a->add_option("--default-max-tokens", cmd->default_max_tokens, "chat completion tokens when a request names none")
      ->capture_default_str()->check(CLI::PositiveNumber);
  a->add_option("--http-threads", cmd->http_threads, "connections served at once (streams hold one each)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  a->add_option("--api-key", cmd->api_key, "require Authorization: Bearer KEY (default: no key)");
  a->add_option("--tokenizer", cmd->tokenizer, "tokenizer.json or directory (default: the checkpoint's, else DeepSeek's)");
  a->add_option("--attention", cmd->attention, "native, dense or window (V4 only)")->capture_default_str();
  a->add_option("--kv-format", cmd->kv_format, "KV storage: bf16 or fp8")->capture_default_str();
  a->add_option("--numerics", cmd->numerics, std::string(evals::kNumericsHelp));
  a->add_flag("--bf16-activations", cmd->bf16_activations, "weight matmuls read BF16-rounded activations (see generate --help)");
  a->add_option("--threads", cmd->threads, "engine threads (0 = all cores)")->capture_default_str();
  a->add_option("--seed", cmd->seed, "synthetic weights seed for presets")->capture_default_str();
  a->add_option("--drain-timeout", cmd->drain_timeout_s, "seconds running requests may finish after SIGTERM/SIGINT")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  a->footer(R"(
Endpoints: GET /health, GET /v1/models (with max_model_len and numerics), POST /v1/completions, POST /v1/chat/completions,
POST /tokenize {"prompt"|"messages"} -> {count, max_model_len, tokens}, POST /detokenize {"tokens"}.
Requests: model (required), prompt (text, or an array of token ids) / messages, max_tokens
(max_completion_tokens), temperature (default 1), top_p, top_k, seed, stream, stream_options.include_usage,
ignore_eos, return_token_ids, stop (a string or up to 16: the text ends before the first one found).
logprobs, echo and n > 1 are refused with 400.
Scheduling: each iteration, one engine step advances every active request: a token for each one
decoding, plus prompt chunks up to --prefill-chunk tokens in all (continuous batching); the step's
matmuls run over all requests' rows at once. A prompt that does not fit the context, or prompt + max_tokens beyond
--max-model-len, is refused (400, code context_length_exceeded), not clamped.
Synthetic presets have a smaller vocabulary than the tokenizer: text prompts are tokenized and each id
folded modulo the vocabulary (lengths and timing are real; send token-id arrays for exact ids).
Chat on DeepSeek-V4 models uses the V4 chat encoding; other families use "role: content\n\n" blocks
followed by "assistant: ". A client that disconnects mid-stream frees its request at the next token.
SIGTERM/SIGINT: stop accepting, let running requests finish (--drain-timeout), then exit 0.)");
  return cmd;
}

int run_serve_command(const ServeCommand& cmd) {
  // Signals go to one waiting thread only: block them before any other thread exists.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  const AttentionMode mode = parse_attention_mode(cmd.attention);
  const KvFormat kv = parse_kv_format(cmd.kv_format);
  const Numerics numerics = evals::resolve_numerics_flag(resolve_model(cmd.model), cmd.model, cmd.numerics);
  ThreadPool pool(cmd.threads);
  auto engine = Engine::open(cmd.model, {&pool}, cmd.seed);
  if (mode == AttentionMode::kWindow && !engine->config().is_v4()) throw UsageError("--attention window needs a DeepSeek-V4 model");
  evals::SchedulerOptions so{cmd.max_active, cmd.max_waiting, cmd.prefill_chunk, {mode, kv, cmd.bf16_activations, numerics}};
  evals::ServerOptions opts;
  opts.model_name = cmd.name.empty() ? cmd.model : cmd.name;
  opts.max_model_len = cmd.max_model_len;
  opts.default_max_tokens = cmd.default_max_tokens;
  opts.http_threads = cmd.http_threads;
  opts.api_key = cmd.api_key;
  opts.drain_timeout = std::chrono::milliseconds(static_cast<int64_t>(cmd.drain_timeout_s * 1000));
  evals::OpenAiServer server(*engine, tokenizer_for(cmd.model, cmd.tokenizer), so, opts);
  const int port = server.bind(cmd.host, cmd.port);

  std::thread([&server, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    fmt::print(stderr, "v4bench serve: {} received, draining\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.shutdown();
  }).detach();

  fmt::print("v4bench serve: {} on http://{}:{} (max_model_len {}, {} active, {} engine threads, {} numerics)\n", opts.model_name,
             cmd.host, port, server.max_model_len(), cmd.max_active, pool.size(), numerics_name(numerics));
  std::fflush(stdout);
  server.run();
  server.shutdown();
  fmt::print("v4bench serve: stopped\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace v4b::cli
