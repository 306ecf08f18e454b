#include "evals/cli/cli.h"

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <ranges>

#include <CLI/CLI.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/errors.h"
#include "common/host.h"
#include "engine/core/thread_pool.h"
#include "engine/io/files.h"
#include "engine/io/tokenizer.h"
#include "engine/kernels/cpu/machine_probe.h"
#include "evals/cli/compare_command.h"
#include "evals/runner/plan.h"
#include "evals/cli/engine_commands.h"
#include "evals/cli/inspect_command.h"
#include "evals/cli/report_command.h"
#include "evals/cli/run_views.h"
#include "evals/cli/serve_command.h"
#include "evals/runner/runner.h"
#include "evals/suites/numerics.h"
#include "evals/suites/suite.h"
#include "reports/render/table.h"
#include "reports/store/store.h"
#include "v4b/build_info.h"

namespace v4b::cli {

namespace {

using nlohmann::json;

// Flags every subcommand takes.
struct Common {
  std::string db = default_db_path();
  std::string format = "table";
  uint64_t seed = 0;
};

void add_common(CLI::App& cmd, Common& c, bool with_seed = false) {
  cmd.add_option("--db", c.db, "results database (SQLite; created if absent; default $V4BENCH_DB or runs/v4bench.db)")
      ->capture_default_str();
  cmd.add_option("--format", c.format, "output format")
      ->check(CLI::IsMember({"table", "md", "json", "csv"}))
      ->capture_default_str();
  if (with_seed) cmd.add_option("--seed", c.seed, "seed for every random choice, recorded with the run")->capture_default_str();
}

// Reading commands must not create a database as a side effect.
std::string summary_line(const evals::RunOutcome& o, const std::string& suite, const std::string& db) {
  return fmt::format("run {} ({}): {} — {} cases ({} run now, {} resumed, {} failed) in {:.2f} s; stored in {}", o.run_id, suite,
                     o.status, o.planned, o.executed, o.resumed, o.failed, o.wall_s, db);
}

void print_run_result(evals::Suite& suite, const evals::RunOutcome& o, const Common& c, bool rows_only) {
  store::Store db(c.db);
  const auto cases = db.cases(o.run_id);
  for (const auto& rec : cases)  // on stderr whatever the format, so a failed run always says why
    if (rec.status == "failed") fmt::print(stderr, "case {} failed: {}\n", rec.key, evals::failure_reason(rec));
  if (c.format == "json") {
    json rows = json::array();
    for (const auto& rec : cases) rows.push_back(evals::case_row(rec));
    if (rows_only) {
      fmt::print("{}\n", rows.dump(2));
      fmt::print(stderr, "{}\n", summary_line(o, suite.name(), c.db));
    } else {
      fmt::print("{}\n", json{{"run_id", o.run_id}, {"suite", suite.name()}, {"status", o.status}, {"db", c.db},
                              {"planned", o.planned}, {"executed", o.executed}, {"resumed", o.resumed},
                              {"failed", o.failed}, {"wall_s", o.wall_s}, {"rows", rows}}
                             .dump(2));
    }
    return;
  }
  fmt::print("{}", render_table(suite.table(cases), c.format));
  if (c.format == "csv") fmt::print(stderr, "{}\n", summary_line(o, suite.name(), c.db));
  else fmt::print("\n{}\n", summary_line(o, suite.name(), c.db));
}

// The per-bin drift of each case of a kld run (its samples).
void print_kld_bins(const std::string& db_path, int64_t run_id) {
  store::Store db(db_path);
  for (const auto& c : db.cases(run_id)) {
    render::Table t;
    t.columns = {{"positions", render::Align::kLeft}, {"count"}, {"KL mean"}, {"top-1 agree"}, {"Δp mean"}};
    for (const auto& smp : c.samples) {
      const json& d = smp.details;
      t.add_row({fmt::format("{}-{}", d.value("first", 0), d.value("last", 0)), std::to_string(d.value("count", 0)),
                 fmt::format("{:.4g}", d.value("kld_mean", 0.0)), fmt::format("{:.2f}%", 100 * d.value("top1_agreement", 0.0)),
                 fmt::format("{:+.4f}", d.value("dp_mean", 0.0))});
    }
    fmt::print("\n{}:\n{}", c.key, render_table(t, "table"));
  }
}

// Runs named by id, or (with no ids) those the filter selects; UsageError when nothing matches.
std::vector<store::RunInfo> select_runs(const store::Store& db, const std::vector<std::string>& ids, const store::RunFilter& filter) {
  std::vector<store::RunInfo> list;
  for (const auto& id : ids) list.push_back(require_run(db, id));
  if (ids.empty()) list = db.list_runs(filter);
  if (list.empty()) throw UsageError("no run matches the filters (see `v4bench runs list`)");
  return list;
}

void write_output(const std::string& text, const std::string& out) {
  if (out.empty()) {
    fmt::print("{}", text);
    return;
  }
  const std::string tmp = out + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f || !(f << text)) throw UsageError(fmt::format("cannot write '{}'", out));
  }
  std::filesystem::rename(tmp, out);
  fmt::print(stderr, "wrote {}\n", out);
}

// "19923,14,2058,3" (optionally in brackets, spaces allowed) as ids; range is checked by decode.
std::vector<int32_t> parse_ids(const std::string& text) {
  std::string_view s = text;
  const auto trim = [](std::string_view v) {
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
    return v;
  };
  s = trim(s);
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = trim(s.substr(1, s.size() - 2));
  std::vector<int32_t> ids;
  if (s.empty()) return ids;
  size_t start = 0;
  while (true) {
    const size_t comma = s.find(',', start);
    const std::string_view item = trim(s.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (item.empty()) throw UsageError(fmt::format("empty entry in --ids '{}'", text));
    int32_t id = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (ec != std::errc() || end != item.data() + item.size() || id < 0)
      throw UsageError(fmt::format("invalid token id '{}' in --ids: expected a non-negative integer", item));
    ids.push_back(id);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return ids;
}

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
  app.set_version_flag("--version", fmt::format("v4bench {} (commit {}, {})", V4B_VERSION, V4B_ENGINE_COMMIT, V4B_BUILD_TYPE));

  // analyze: the analytic projection, printed as a table or a JSON array of rows.
  Common analyze_common;
  auto analyze_suite = evals::make_suite("analyze");
  CLI::App* analyze = app.add_subcommand("analyze", "KV-cache bytes and decode FLOPs per token vs a baseline (analytic)");
  analyze_suite->add_options(*analyze);
  add_common(*analyze, analyze_common, /*with_seed=*/true);
  analyze->footer("\n" + analyze_suite->description() +
                  "\n\nStores a run of suite `analyze`; --format json prints one object per (model, ctx).");

  // run SUITE: every suite is a subcommand with its own flags.
  Common run_common;
  int64_t resume = 0;
  bool progress = false;
  CLI::App* run = app.add_subcommand("run", "run a suite and store its results (resumable)");
  std::string plan_path;
  run->add_option("--plan", plan_path, "run every step of a plan file (plans/ci.json, plans/demo.json) instead of one suite");
  // The same flags on `run` and on each suite, one target: `run --db X kv` and `run kv --db X` agree.
  add_common(*run, run_common, /*with_seed=*/true);
  run->add_flag("--progress,!--no-progress", progress, "one line per step and case on stderr (default: when stderr is a terminal)");
  run->require_subcommand(0, 1);
  run->allow_extras();  // so an unknown suite name gets our own message
  run->footer("\nEvery case is committed in its own transaction: a killed run keeps what it finished and\n"
              "`v4bench run SUITE --resume RUN` continues it without repeating a case.\n"
              "`--format json` ends with one JSON object holding run_id, suite and status.");
  std::vector<std::pair<CLI::App*, std::unique_ptr<evals::Suite>>> suites;
  for (const auto& e : evals::suite_registry()) {
    auto s = e.make();
    CLI::App* sub = run->add_subcommand(s->name(), s->summary());
    s->add_options(*sub);
    add_common(*sub, run_common, /*with_seed=*/true);
    sub->add_option("--resume", resume, "continue run RUN (its stored parameters are used)");
    sub->add_flag("--progress,!--no-progress", progress, "one line per case on stderr (default: when stderr is a terminal)");
    sub->footer("\n" + s->description());
    suites.emplace_back(sub, std::move(s));
  }
  progress = isatty(STDERR_FILENO);

  // runs: browse and export what is stored.
  Common runs_common;
  CLI::App* runs = app.add_subcommand("runs", "list, show and export stored runs");
  runs->require_subcommand(1);
  store::RunFilter filter;
  std::string out_path;
  std::string show_id;
  std::vector<std::string> export_ids, delete_ids;
  // The same selection flags on list, export and delete.
  auto add_filters = [&filter](CLI::App* cmd) {
    cmd->add_option("--suite", filter.suite, "only runs of this suite");
    cmd->add_option("--model", filter.model, "only runs whose model label contains this text");
    cmd->add_option("--since", filter.since, "only runs created on or after this date (2026-11-28 or 2026-11-28T12:00)");
    cmd->add_option("--until", filter.until, "only runs created on or before this date (a date includes the whole day)");
  };
  CLI::App* runs_list = runs->add_subcommand("list", "list runs, newest first");
  add_filters(runs_list);
  runs_list->add_option("--limit", filter.limit, "at most this many runs")->check(CLI::NonNegativeNumber);
  add_common(*runs_list, runs_common);
  CLI::App* runs_show = runs->add_subcommand("show", "one run: parameters, host context and every case's metrics");
  runs_show->add_option("run", show_id, "run id, or 'last'")->required();
  add_common(*runs_show, runs_common);
  CLI::App* runs_export = runs->add_subcommand("export", "export runs as JSON (full records) or CSV (one row per metric)");
  runs_export->add_option("runs", export_ids, "run ids ('last' for the newest); without ids, the runs the filters select");
  add_filters(runs_export);
  runs_export->add_option("--out,-o", out_path, "write to this file instead of stdout");
  add_common(*runs_export, runs_common);
  CLI::App* runs_delete = runs->add_subcommand("delete", "delete runs with all their cases, metrics, samples and artifacts");
  runs_delete->add_option("runs", delete_ids, "run ids ('last' for the newest); without ids, the runs the filters select");
  add_filters(runs_delete);
  add_common(*runs_delete, runs_common);
  runs_delete->footer("\nWithout run ids at least one filter is needed, so a bare `runs delete` never empties the database.");

  // kld: logit fidelity of a candidate against a base, stored as a run of suite `kld`.
  Common kld_common;
  auto kld_suite = evals::make_suite("kld");
  CLI::App* kld = app.add_subcommand("kld", "KL divergence, top-1 agreement and Δp of a candidate's logits against a base");
  kld_suite->add_options(*kld);
  add_common(*kld, kld_common, /*with_seed=*/true);
  kld->footer("\n" + kld_suite->description() +
              "\n\nStores a run of suite `kld` (as `v4bench run kld` does) and prints its table, then the KL and\n"
              "agreement per position bin so drift with context is visible.");

  // inspect: a checkpoint's tensors, checked against its config.json (evals/cli/inspect_command.h).
  const auto inspect = add_inspect_command(app);
  const auto synth = add_synth_command(app);
  const auto report = add_report_command(app);
  const auto generate = add_generate_command(app);
  const auto compare = add_compare_command(app);
  const auto serve = add_serve_command(app);
  const auto bench = add_bench_command(app);

  Common env_common;
  bool probe = false;
  CLI::App* env = app.add_subcommand("env", "this machine's context as recorded with every run");
  env->add_flag("--probe", probe, "measure read bandwidth (cache and DRAM) and fp32 FMA peak (~2 s) and keep them for later runs");
  env->footer("\nThe measured ceilings are cached per host (see $V4BENCH_CACHE_DIR) and recorded in the host\n"
              "context of every later run, so reports can give speeds as a percentage of them.");
  add_common(*env, env_common);
  app.add_subcommand("version", "print the version, engine commit and build type");

  // tokenize / detokenize: the shipped DeepSeek vocabulary unless --tokenizer names another.
  std::string tok_text, tok_file, tok_path, tok_format = "table", ids_text;
  bool tok_bos = false;
  CLI::App* tokenize = app.add_subcommand("tokenize", "token ids of a text (DeepSeek byte-level BPE, V4 chat tokens)");
  tokenize->add_option("--text", tok_text, "the text to tokenize");
  tokenize->add_option("--file", tok_file, "read the text to tokenize from this file (UTF-8)");
  tokenize->add_flag("--bos", tok_bos, "prepend the BOS token (<｜begin▁of▁sentence｜>, id 0)");
  CLI::App* detokenize = app.add_subcommand("detokenize", "text of token ids");
  detokenize->add_option("--ids", ids_text, "comma-separated token ids, e.g. 19923,14,2058,3")->required();
  for (CLI::App* cmd : {tokenize, detokenize}) {
    cmd->add_option("--tokenizer", tok_path,
                    "a tokenizer.json (plain or gzip), or a directory holding one (default: datasets/tokenizer/deepseek_v3)");
    cmd->add_option("--format", tok_format, "output format")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  }
  tokenize->footer(
      "\nExactly one of --text and --file. Special and chat tokens written in the text (<｜User｜>, <think>, ...) map to\n"
      "their ids. Prints the ids comma-separated on one line (feed them to `v4bench detokenize --ids`), or with\n"
      "--format json one object {\"ids\": [...]}.\n\nExample: v4bench tokenize --text 'Hello, world!' --bos   ->   0,19923,14,2058,3");
  detokenize->footer(
      "\nPrints the decoded text exactly, with no newline added; byte sequences that are not valid UTF-8 become\n"
      "U+FFFD. --format json prints {\"text\": \"...\"}. An id that is not an integer or not in the vocabulary is an error.\n\n"
      "Example: v4bench detokenize --ids 19923,14,2058,3   ->   Hello, world!");

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
    if (analyze->parsed()) {
      evals::RunRequest req{analyze_common.db, analyze_suite->params(), analyze_common.seed, std::nullopt, false};
      const auto outcome = evals::run_suite(*analyze_suite, req);
      print_run_result(*analyze_suite, outcome, analyze_common, /*rows_only=*/true);
      return outcome.status == "done" ? 0 : 1;
    }
    if (kld->parsed()) {
      evals::RunRequest req{kld_common.db, kld_suite->params(), kld_common.seed, std::nullopt, false};
      const auto outcome = evals::run_suite(*kld_suite, req);
      print_run_result(*kld_suite, outcome, kld_common, /*rows_only=*/false);
      if (kld_common.format == "table") print_kld_bins(kld_common.db, outcome.run_id);
      return outcome.status == "done" ? 0 : 1;
    }
    if (run->parsed() && run->get_subcommands().empty() && !plan_path.empty()) {
      if (!run->remaining().empty()) throw UsageError("run --plan takes no suite: the plan names them");
      auto plan = evals::load_plan(plan_path, run_common.seed);
      const auto outcomes = evals::run_plan(plan, run_common.db, run_common.seed, progress);
      bool ok = true;
      json arr = json::array();
      for (const auto& o : outcomes) {
        ok = ok && o.run.status == "done";
        arr.push_back({{"suite", o.suite}, {"run_id", o.run.run_id}, {"status", o.run.status}, {"cases", o.run.planned},
                       {"failed", o.run.failed}, {"wall_s", o.run.wall_s}});
      }
      if (run_common.format == "json") fmt::print("{}\n", json{{"plan", plan.name}, {"db", run_common.db}, {"runs", arr}}.dump(2));
      else
        for (const auto& o : outcomes) fmt::print("{}\n", summary_line(o.run, o.suite, run_common.db));
      return ok ? 0 : 1;
    }
    if (run->parsed() && run->get_subcommands().empty()) {
      const auto rest = run->remaining();
      if (rest.empty()) throw UsageError("run needs a suite, e.g. `v4bench run analyze` (see `v4bench run --help`)");
      evals::make_suite(rest.front());  // names the unknown suite and lists the known ones
      throw UsageError(fmt::format("unexpected argument '{}' for run", rest.front()));
    }
    for (auto& [sub, suite] : suites) {
      if (!sub->parsed()) continue;
      evals::RunRequest req{run_common.db, json(), run_common.seed, std::nullopt, progress};
      if (sub->count("--resume")) req.resume = resume;
      else req.params = suite->params();
      const auto outcome = evals::run_suite(*suite, req);
      print_run_result(*suite, outcome, run_common, /*rows_only=*/false);
      return outcome.status == "done" ? 0 : 1;
    }
    if (runs_list->parsed()) {
      auto db = open_existing(runs_common.db);
      const auto list = db->list_runs(filter);
      if (runs_common.format == "json") {
        json arr = json::array();
        for (const auto& r : list) arr.push_back(run_json(r));
        fmt::print("{}\n", arr.dump(2));
        return 0;
      }
      render::Table t;
      t.columns = {{"id"}, {"suite", render::Align::kLeft}, {"model", render::Align::kLeft}, {"status", render::Align::kLeft},
                   {"cases"}, {"created", render::Align::kLeft}, {"commit", render::Align::kLeft}};
      for (const auto& r : list)
        t.add_row({std::to_string(r.id), r.suite, r.model, r.status, std::to_string(r.n_cases), r.created_at, r.engine_commit});
      fmt::print("{}", render_table(t, runs_common.format));
      return 0;
    }
    if (runs_show->parsed()) {
      auto db = open_existing(runs_common.db);
      const auto r = require_run(*db, show_id);
      if (runs_common.format == "json") {
        fmt::print("{}\n", run_with_cases_json(*db, r).dump(2));
      } else if (runs_common.format == "csv") {
        fmt::print("{}", render::to_csv(long_table(*db, {r})));
      } else {
        const bool md = runs_common.format == "md";
        fmt::print("{}run {} — suite {}, model {}, status {}\n", md ? "### " : "", r.id, r.suite, r.model, r.status);
        fmt::print("{}created {}, finished {}, engine {}, seed {}\n", md ? "\n" : "", r.created_at,
                   r.finished_at.empty() ? "-" : r.finished_at, r.engine_commit, r.seed);
        if (const std::string n = evals::numerics_summary(r.params); !n.empty()) fmt::print("{}numerics {}\n", md ? "\n" : "", n);
        fmt::print("{}params {}\n{}host {} ({} cores), {}\n\n", md ? "\n" : "", r.params.dump(), md ? "\n" : "",
                   r.host.value("cpu", "?"), r.host.value("logical_cores", 0), r.host.value("os", "?"));
        fmt::print("{}", render_table(run_table(*db, r), runs_common.format));
      }
      return 0;
    }
    if (runs_export->parsed()) {
      auto db = open_existing(runs_common.db);
      const auto list = select_runs(*db, export_ids, filter);
      if (runs_common.format == "csv") {
        write_output(render::to_csv(long_table(*db, list)), out_path);
      } else if (runs_common.format == "json") {
        json arr = json::array();
        for (const auto& r : list) arr.push_back(run_with_cases_json(*db, r));
        write_output(arr.dump(2) + "\n", out_path);
      } else {
        throw UsageError("runs export writes --format json or csv");
      }
      return 0;
    }
    if (runs_delete->parsed()) {
      if (delete_ids.empty() && filter.suite.empty() && filter.model.empty() && filter.since.empty() && filter.until.empty())
        throw UsageError("runs delete needs run ids or a filter (--suite, --model, --since, --until)");
      auto db = open_existing(runs_common.db);
      const auto list = select_runs(*db, delete_ids, filter);
      for (const auto& r : list) db->delete_run(r.id);
      fmt::print("deleted {} run{}{}{}\n", list.size(), list.size() == 1 ? "" : "s", list.empty() ? "" : ": ",
                 fmt::join(list | std::views::transform([](const store::RunInfo& r) { return r.id; }), ", "));
      return 0;
    }
    if (inspect->app->parsed()) return run_inspect_command(*inspect);
    if (synth->app->parsed()) return run_synth_command(*synth);
    if (report->app->parsed()) return run_report_command(*report);
    if (generate->app->parsed()) return run_generate_command(*generate);
    if (compare->app->parsed()) return run_compare_command(*compare);
    if (serve->app->parsed()) return run_serve_command(*serve);
    if (bench->app->parsed()) return run_bench_command(*bench);
    if (env->parsed()) {
      if (probe) {
        if (env_common.format != "json") fmt::print(stderr, "probing bandwidth and FMA peak on {} threads...\n", default_pool().size());
        save_ceilings(probe_machine(default_pool()));
      }
      const json host = host_context();
      if (env_common.format == "json") {
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
      fmt::print("{}", render_table(t, env_common.format));
      return 0;
    }
    if (tokenize->parsed()) {
      const bool has_text = tokenize->count("--text") > 0, has_file = tokenize->count("--file") > 0;
      if (has_text == has_file) throw UsageError("tokenize needs exactly one of --text or --file");
      const std::string text = has_text ? tok_text : read_file_bytes(tok_file, "--file");
      const Tokenizer tok = Tokenizer::load(tok_path);
      const auto ids = tok.encode(text, tok_bos);
      if (tok_format == "json") fmt::print("{}\n", json{{"ids", ids}}.dump());
      else fmt::print("{}\n", fmt::join(ids, ","));
      return 0;
    }
    if (detokenize->parsed()) {
      const auto ids = parse_ids(ids_text);
      const Tokenizer tok = Tokenizer::load(tok_path);
      const std::string text = tok.decode(ids);
      if (tok_format == "json") fmt::print("{}\n", json{{"text", text}}.dump());
      else fmt::print("{}", text);
      return 0;
    }
    fmt::print("v4bench {} (commit {}, {})\n", V4B_VERSION, V4B_ENGINE_COMMIT, V4B_BUILD_TYPE);
    return 0;
  } catch (const UsageError& e) {
    fmt::print(stderr, "v4bench: error: {}\n", e.what());
    return 2;
  } catch (const store::StoreError& e) {
    fmt::print(stderr, "v4bench: error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "v4bench: internal error: {}\n", e.what());
    return 1;
  }
}

}  // namespace v4b::cli
