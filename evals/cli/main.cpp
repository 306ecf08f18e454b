#include "evals/cli/cli.h"

int main(int argc, char** argv) { return v4b::cli::run_cli(argc, argv); }
