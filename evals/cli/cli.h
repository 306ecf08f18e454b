// The `v4bench` command line: the composition root that wires suites, the runner, the store and
// the renderers together. main() only calls run_cli.
#pragma once

namespace v4b::cli {

// Returns the process exit status: 0 success, 1 internal failure, 2 usage error or bad input.
int run_cli(int argc, char** argv);

}  // namespace v4b::cli
