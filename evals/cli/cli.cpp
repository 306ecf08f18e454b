#include "evals/cli/cli.h"

#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include "common/errors.h"
#include "evals/backends/http_client.h"
#include "evals/cli/analyze_command.h"
#include "evals/cli/bench_command.h"
#include "evals/cli/compare_command.h"
#include "evals/cli/env_command.h"
#include "evals/cli/generate_command.h"
#include "evals/cli/inspect_command.h"
#include "evals/cli/kld_command.h"
#include "evals/cli/report_command.h"
#include "evals/cli/run_command.h"
#include "evals/cli/runs_command.h"
#include "evals/cli/serve_command.h"
#include "evals/cli/synth_command.h"
#include "evals/cli/tokenize_command.h"
#include "reports/store/store.h"

namespace v4b::cli {

namespace {

constexpr const char* kFooter = R"(
Sizes accept plain integers and k/m suffixes (4k = 4096, 1m = 1048576).
Results go to the SQLite database given by --db (default runs/v4bench.db, or $V4BENCH_DB).
Exit status: 0 success, 1 internal failure, 2 usage error or bad input (nothing is stored).)";

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"v4bench: measures what long-context attention costs and what it recalls.\n"
               "KV-cache occupancy, FLOPs, recall fidelity, coding pass@k and throughput, with every\n"
               "result stored in SQLite and every number traceable to the run that produced it."};
  app.name("v4bench");
  app.footer(kFooter);
  app.require_subcommand(1);
  app.set_version_flag("--version", version_line());

  // Each command in its own evals/cli/*_command.h; `--help` lists them in this order.
  const auto analyze = add_analyze_command(app);
  const auto run = add_run_command(app);
  const auto runs = add_runs_command(app);
  const auto kld = add_kld_command(app);
  const auto inspect = add_inspect_command(app);
  const auto synth = add_synth_command(app);
  const auto report = add_report_command(app);
  const auto generate = add_generate_command(app);
  const auto compare = add_compare_command(app);
  const auto serve = add_serve_command(app);
  const auto bench = add_bench_command(app);
  const auto env = add_env_command(app);
  const auto version = add_version_command(app);
  const auto tokenize = add_tokenize_command(app);
  const auto detokenize = add_detokenize_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::string msg = e.what();
    for (char& ch : msg)
      if (ch == '\n') ch = ' ';
    fmt::print(stderr, "v4bench: error: {} (see --help)\n", msg);
    return 2;
  }

  try {
    if (analyze->app->parsed()) return run_analyze_command(*analyze);
    if (run->app->parsed()) return run_run_command(*run);
    if (runs->app->parsed()) return run_runs_command(*runs);
    if (kld->app->parsed()) return run_kld_command(*kld);
    if (inspect->app->parsed()) return run_inspect_command(*inspect);
    if (synth->app->parsed()) return run_synth_command(*synth);
    if (report->app->parsed()) return run_report_command(*report);
    if (generate->app->parsed()) return run_generate_command(*generate);
    if (compare->app->parsed()) return run_compare_command(*compare);
    if (serve->app->parsed()) return run_serve_command(*serve);
    if (bench->app->parsed()) return run_bench_command(*bench);
    if (env->app->parsed()) return run_env_command(*env);
    if (tokenize->app->parsed()) return run_tokenize_command(*tokenize);
    if (detokenize->app->parsed()) return run_detokenize_command(*detokenize);
    return run_version_command(*version);  // require_subcommand(1): version is the one left
  } catch (const UsageError& e) {
    fmt::print(stderr, "v4bench: error: {}\n", e.what());
    return 2;
  } catch (const store::StoreError& e) {
    fmt::print(stderr, "v4bench: error: {}\n", e.what());
    return 2;
  } catch (const evals::HttpError& e) {  // a server that cannot be reached or refused: not our fault, not the user's flags
    fmt::print(stderr, "v4bench: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "v4bench: internal error: {}\n", e.what());
    return 1;
  }
}

}  // namespace v4b::cli
