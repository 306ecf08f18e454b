// `v4bench serve`: the OpenAI-compatible server (evals/serve) on the engine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace v4b::cli {

struct ServeCommand {
  CLI::App* app = nullptr;
  std::string model, host = "127.0.0.1", name, api_key, tokenizer, attention = "native", kv_format = "bf16";
  std::string numerics;  // "" = the model's default
  int port = 8000, max_active = 16, max_waiting = 1024, http_threads = 128, threads = 0;
  int64_t max_model_len = 0, prefill_chunk = 256, default_max_tokens = 256;
  double drain_timeout_s = 10;
  uint64_t seed = 0;
  bool bf16_activations = false;
};
std::unique_ptr<ServeCommand> add_serve_command(CLI::App& parent);
int run_serve_command(const ServeCommand& cmd);

}  // namespace v4b::cli
