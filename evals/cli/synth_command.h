// `v4bench synth`: write a seeded synthetic checkpoint (config.json + safetensors).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace v4b::cli {

struct SynthCommand {
  CLI::App* app = nullptr;
  std::string preset, out;
  uint64_t seed = 0;
};
std::unique_ptr<SynthCommand> add_synth_command(CLI::App& parent);
int run_synth_command(const SynthCommand& cmd);

}  // namespace v4b::cli
