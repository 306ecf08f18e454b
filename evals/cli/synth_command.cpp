#include "evals/cli/synth_command.h"

#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "engine/models/presets.h"
#include "engine/synth/synth.h"
#include "evals/cli/cli_util.h"

namespace v4b::cli {

std::unique_ptr<SynthCommand> add_synth_command(CLI::App& parent) {
  auto cmd = std::make_unique<SynthCommand>();
  cmd->app = parent.add_subcommand("synth", "write a seeded synthetic checkpoint (config.json + safetensors)");
  cmd->app->add_option("--preset", cmd->preset, "synthetic preset: " + synthetic_presets())->required();
  cmd->app->add_option("--out", cmd->out, "output directory (replaced atomically)")->required();
  cmd->app->add_option("--seed", cmd->seed, "seed of every weight")->capture_default_str();
  cmd->app->footer(
      "\nTensors carry the official names, dtypes and shapes (FP8 E4M3 weights with UE8M0 128x128 block\n"
      "scales, FP4 experts with UE8M0 scales per 32, tid2eid hash tables). Values are random, scaled so\n"
      "activations stay finite at any depth. Preset names also work directly as --model elsewhere: they\n"
      "are synthesised once and cached.");
  return cmd;
}

int run_synth_command(const SynthCommand& cmd) {
  const nlohmann::json config = preset_config_json(cmd.preset);
  if (!config.value("synthetic", false))
    throw UsageError(fmt::format("'{}' is not a synthetic preset (expected one of {})", cmd.preset, synthetic_presets()));
  const auto t0 = std::chrono::steady_clock::now();
  write_synthetic_checkpoint(config, cmd.out, cmd.seed);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("wrote {} (preset {}, seed {}) in {:.1f} s\n", cmd.out, cmd.preset, cmd.seed, seconds);
  return 0;
}

}  // namespace v4b::cli
