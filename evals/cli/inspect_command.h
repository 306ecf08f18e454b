// `v4bench inspect PATH`: what a checkpoint holds (tensors, dtypes, shapes, bytes, metadata) and,
// next to a config.json, whether every tensor that config needs is there with the right dtype and
// shape. Kept out of cli.cpp so the composition root only registers and dispatches it.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace v4b::cli {

struct InspectCommand {
  CLI::App* app = nullptr;  // the subcommand; parsed() after a successful parse
  std::string path;
  std::string format = "table";
  bool check_config = false;
};

// Adds the `inspect` subcommand to `parent`; CLI11 writes into the returned object while parsing.
std::unique_ptr<InspectCommand> add_inspect_command(CLI::App& parent);

// Prints the listing to stdout and returns 0. Throws UsageError (exit 2) for a malformed checkpoint
// or config.json (one line) and for a checkpoint that does not fit its config (a summary line,
// then one line per problem), after printing the listing.
int run_inspect_command(const InspectCommand& cmd);

}  // namespace v4b::cli
