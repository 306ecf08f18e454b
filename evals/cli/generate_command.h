// `v4bench generate`: run the engine on a prompt and report its speed, the logits' hash and,
// on request, log-probabilities and a dump of every logits row.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace v4b::cli {

struct GenerateCommand {
  CLI::App* app = nullptr;
  std::string model, prompt, prompt_ids, attention = "native", kv_format = "bf16", format = "table", dump_logits;
  std::string numerics;  // "" = the model's default
  int64_t max_tokens = 16, top_k = 0, prompt_len = 0, logprobs = 0;
  double temperature = 0, top_p = 1.0;
  uint64_t seed = 0;
  int threads = 0;
  bool bf16_activations = false;
};
std::unique_ptr<GenerateCommand> add_generate_command(CLI::App& parent);
int run_generate_command(const GenerateCommand& cmd);

}  // namespace v4b::cli
