// `v4bench bench`: llama-bench-style prompt-processing and generation speed of the engine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace v4b::cli {

struct BenchCommand {
  CLI::App* app = nullptr;
  std::string models, prompt = "512", gen = "128", depth = "0", threads = "0", parallel = "1", output = "md", attention = "native",
              kv_format = "bf16";
  std::string numerics;  // "" = each model's default
  int reps = 5, warmup = 1;
  uint64_t seed = 0;
  bool bf16_activations = false;
};
std::unique_ptr<BenchCommand> add_bench_command(CLI::App& parent);
int run_bench_command(const BenchCommand& cmd);

}  // namespace v4b::cli
