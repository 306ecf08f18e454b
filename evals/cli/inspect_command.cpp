#include "evals/cli/inspect_command.h"

#include <filesystem>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "engine/io/inspect.h"
#include "engine/io/safetensors.h"
#include "engine/models/model_config.h"
#include "engine/models/tensor_inventory.h"
#include "engine/models/weights_binder.h"
#include "reports/render/table.h"

namespace v4b::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Names and metadata come from the file: keep every one on its own terminal line.
std::string printable(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
    else out += ch;
  }
  return out;
}

std::string human_bytes(uint64_t n) {
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (n < 1024) return fmt::format("{} B", n);
  double v = static_cast<double>(n);
  size_t u = 0;
  for (v /= 1024; v >= 1024 && u + 1 < std::size(kUnits); ++u) v /= 1024;
  return fmt::format("{:.2f} {}", v, kUnits[u]);
}

struct ConfigCheck {
  std::string config_path;
  std::string model_type;
  size_t n_expected = 0;
  bool mtp_valid = false;  // the MTP block is present and fits (only MTP decoding needs it)
  std::vector<std::string> problems;

  json to_json() const {
    return {{"config", config_path}, {"model_type", model_type}, {"ok", problems.empty()},
            {"n_expected", n_expected}, {"mtp", mtp_valid}, {"problems", problems}};
  }
};

std::optional<ConfigCheck> check_config(const InspectCommand& cmd, const CheckpointReader& ckpt) {
  std::error_code ec;
  const bool is_dir = fs::is_directory(cmd.path, ec);
  // A directory's own config.json, or the one beside the file PATH names.
  const fs::path dir = is_dir ? fs::path(cmd.path) : fs::path(cmd.path).parent_path();
  const fs::path config = dir / "config.json";
  const bool present = fs::is_regular_file(config, ec);
  if (!cmd.check_config && !(is_dir && present)) return std::nullopt;
  if (!present)
    throw UsageError(fmt::format("--check-config: no config.json in '{}' to check the checkpoint against",
                                 dir.empty() ? "." : dir.string()));

  const ModelConfig m = load_model_config(config.string());
  ConfigCheck c;
  c.config_path = config.string();
  c.model_type = m.model_type;
  c.n_expected = expected_tensors(m, /*include_mtp=*/false).size();
  c.problems = checkpoint_problems(m, ckpt, /*require_mtp=*/false);
  c.mtp_valid = m.n_mtp_layers > 0 && checkpoint_problems(m, ckpt, /*require_mtp=*/true).empty();
  return c;
}

void print_table(const json& listing) {
  fmt::print("checkpoint {}\n", printable(listing["path"].get<std::string>()));
  for (const auto& [k, v] : listing["metadata"].items())
    fmt::print("metadata: {} = {}\n", printable(k), printable(v.is_string() ? v.get<std::string>() : v.dump()));
  const bool sharded = listing["files"].size() > 1;
  render::Table t;
  t.columns = {{"name", render::Align::kLeft}, {"dtype", render::Align::kLeft}, {"shape", render::Align::kLeft}, {"bytes"}};
  if (sharded) t.columns.push_back({"file", render::Align::kLeft});
  for (const auto& x : listing["tensors"]) {
    std::vector<std::string> row = {printable(x["name"].get<std::string>()), x["dtype"].get<std::string>(),
                                    shape_string(x["shape"].get<std::vector<int64_t>>()), std::to_string(x["bytes"].get<uint64_t>())};
    if (sharded) row.push_back(printable(x["file"].get<std::string>()));
    t.add_row(std::move(row));
  }
  fmt::print("{}", render::to_text(t));
  const auto n_files = listing["files"].size();
  const auto total = listing["total_bytes"].get<uint64_t>();
  fmt::print("{} tensors, {} bytes ({}) in {} shard{}\n", listing["n_tensors"].get<uint64_t>(), total, human_bytes(total), n_files,
             n_files == 1 ? "" : "s");
}

}  // namespace

std::unique_ptr<InspectCommand> add_inspect_command(CLI::App& parent) {
  auto cmd = std::make_unique<InspectCommand>();
  cmd->app = parent.add_subcommand("inspect", "list a checkpoint's tensors and check them against its config.json");
  cmd->app->add_option("path", cmd->path, "a .safetensors file, an index JSON (model.safetensors.index.json) or a checkpoint directory")
      ->required();
  cmd->app->add_option("--format", cmd->format, "output format")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  cmd->app->add_flag("--check-config", cmd->check_config,
                     "check every tensor's presence, dtype and shape against the config.json beside PATH "
                     "(automatic when PATH is a directory holding one)");
  cmd->app->footer(
      "\nReads headers only (no tensor data). Prints name, dtype, shape and bytes of every tensor, the\n"
      "metadata, and a totals line; `--format json` prints one object (tensors, metadata, files,\n"
      "total_bytes, n_tensors and, when checked, config_check {ok, problems, mtp}).\n"
      "The config check lists every missing tensor and wrong dtype or shape at once; MTP weights are\n"
      "optional. Exit status 2 for a malformed file or config.json (one line on stderr) or a checkpoint\n"
      "that does not match its config (the problems on stderr).\n"
      "Example: v4bench inspect checkpoints/DeepSeek-V4-Flash --format json");
  return cmd;
}

int run_inspect_command(const InspectCommand& cmd) {
  const CheckpointReader ckpt(cmd.path);  // validates every shard's header; one-line UsageError
  json listing = inspect_checkpoint(ckpt);
  const auto check = check_config(cmd, ckpt);

  if (cmd.format == "json") {
    if (check) listing["config_check"] = check->to_json();
    fmt::print("{}\n", listing.dump(2));
  } else {
    print_table(listing);
    if (check && check->problems.empty())
      fmt::print("config check: ok ({} tensors as {} expects; {})\n", check->n_expected, check->config_path,
                 check->mtp_valid ? "MTP weights present" : "no usable MTP weights, which only MTP decoding needs");
    else if (check)
      fmt::print("config check: {} problem{} (on stderr)\n", check->problems.size(), check->problems.size() == 1 ? "" : "s");
  }
  if (check && !check->problems.empty()) throw UsageError(format_checkpoint_problems(ckpt.path(), check->problems));
  return 0;
}

}  // namespace v4b::cli
