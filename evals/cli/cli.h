// The `v4bench` command line: the composition root that registers every command (one
// evals/cli/*_command.h each) and dispatches to the one parsed. main() only calls run_cli.
#pragma once

namespace v4b::cli {

// Returns the process exit status: 0 success, 1 internal failure, 2 usage error or bad input.
int run_cli(int argc, char** argv);

}  // namespace v4b::cli
