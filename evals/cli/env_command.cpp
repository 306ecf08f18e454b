#include "evals/cli/env_command.h"

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/host.h"
#include "engine/core/thread_pool.h"
#include "engine/kernels/cpu/machine_probe.h"
#include "evals/cli/run_views.h"
#include "reports/render/table.h"
#include "v4b/build_info.h"

namespace v4b::cli {

using nlohmann::json;

std::unique_ptr<EnvCommand> add_env_command(CLI::App& parent) {
  auto cmd = std::make_unique<EnvCommand>();
  CLI::App* a = cmd->app = parent.add_subcommand("env", "this machine's context as recorded with every run");
  a->add_flag("--probe", cmd->probe, "measure read bandwidth (cache and DRAM) and fp32 FMA peak (~2 s) and keep them for later runs");
  a->footer("\nThe measured ceilings are cached per host (see $V4BENCH_CACHE_DIR) and recorded in the host\n"
            "context of every later run, so reports can give speeds as a percentage of them.");
  add_common(*a, cmd->common);
  return cmd;
}

int run_env_command(const EnvCommand& cmd) {
  if (cmd.probe) {
    if (cmd.common.format != "json") fmt::print(stderr, "probing bandwidth and FMA peak on {} threads...\n", default_pool().size());
    save_ceilings(probe_machine(default_pool()));
  }
  const json host = host_context();
  if (cmd.common.format == "json") {
    fmt::print("{}\n", host.dump(2));
    return 0;
  }
  render::Table t;
  t.columns = {{"key", render::Align::kLeft}, {"value", render::Align::kLeft}};
  for (const auto& [k, v] : host.items()) {
    if (k == "ceilings") continue;
    t.add_row({k, v.is_string() ? v.get<std::string>() : v.dump()});
  }
  if (host.contains("ceilings")) {
    const json& c = host["ceilings"];
    t.add_row({"read GB/s (DRAM)", fmt::format("{:.1f}", c.value("read_gbps_dram", 0.0))});
    t.add_row({"read GB/s (cache)", fmt::format("{:.1f}", c.value("read_gbps_cache", 0.0))});
    t.add_row({"fp32 FMA GFLOP/s", fmt::format("{:.1f}", c.value("fma_gflops", 0.0))});
    t.add_row({"probed", fmt::format("{} on {} threads, {}", c.value("measured_at", "?"), c.value("threads", 0), c.value("isa", "?"))});
  } else {
    t.notes.push_back("(no measured ceilings yet: run `v4bench env --probe`)");
  }
  fmt::print("{}", render_table(t, cmd.common.format));
  return 0;
}

std::unique_ptr<VersionCommand> add_version_command(CLI::App& parent) {
  auto cmd = std::make_unique<VersionCommand>();
  cmd->app = parent.add_subcommand("version", "print the version, engine commit and build type");
  return cmd;
}

int run_version_command(const VersionCommand&) {
  fmt::print("{}\n", version_line());
  return 0;
}

std::string version_line() { return fmt::format("v4bench {} (commit {}, {})", V4B_VERSION, V4B_ENGINE_COMMIT, V4B_BUILD_TYPE); }

}  // namespace v4b::cli
