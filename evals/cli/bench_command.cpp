#include "evals/cli/bench_command.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "common/host.h"
#include "common/units.h"
#include "engine/core/thread_pool.h"
#include "engine/models/cost_model.h"
#include "engine/models/presets.h"
#include "engine/runtime/engine.h"
#include "evals/suites/numerics.h"
#include "reports/render/table.h"
#include "v4b/build_info.h"

namespace v4b::cli {

namespace {

struct BenchRow {
  std::string model, attention, kv_format, activations, numerics;
  int threads = 0;
  int64_t n_prompt = 0, n_gen = 0, n_depth = 0, n_parallel = 1;
  std::vector<double> ns;  // one per repetition
  std::string test_time;

  std::string test() const {
    std::string t = n_prompt > 0 ? fmt::format("pp{}", n_prompt) : fmt::format("tg{}", n_gen);
    if (n_parallel > 1) t += fmt::format(" x{}", n_parallel);
    return n_depth > 0 ? t + fmt::format(" @ d{}", n_depth) : t;
  }
  int64_t tokens() const { return (n_prompt + n_gen) * n_parallel; }
  std::vector<double> ts() const {
    std::vector<double> v;
    for (double x : ns) v.push_back(x > 0 ? tokens() * 1e9 / x : 0);
    return v;
  }
};

// Mean and sample standard deviation (n - 1), as llama-bench reports them.
std::pair<double, double> mean_std(const std::vector<double>& v) {
  if (v.empty()) return {0, 0};
  double m = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return {m, v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0};
}

nlohmann::json row_json(const BenchRow& r) {
  const auto [avg_ns, sd_ns] = mean_std(r.ns);
  const auto [avg_ts, sd_ts] = mean_std(r.ts());
  return {{"build_commit", V4B_ENGINE_COMMIT}, {"model", r.model}, {"n_threads", r.threads}, {"attention", r.attention},
          {"kv_format", r.kv_format}, {"activations", r.activations}, {"numerics", r.numerics}, {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen}, {"n_depth", r.n_depth}, {"n_parallel", r.n_parallel},
          {"test", r.test()}, {"test_time", r.test_time}, {"avg_ns", static_cast<int64_t>(avg_ns)},
          {"stddev_ns", static_cast<int64_t>(sd_ns)}, {"avg_ts", avg_ts}, {"stddev_ts", sd_ts}, {"samples_ns", r.ns},
          {"samples_ts", r.ts()}};
}

const std::vector<std::string> kScalarFields = {"build_commit", "model",     "n_threads", "attention",  "kv_format",
                                                "activations",  "numerics",  "n_prompt",  "n_gen",      "n_depth",
                                                "n_parallel",   "test",      "test_time", "avg_ns",     "stddev_ns",
                                                "avg_ts",       "stddev_ts"};

std::string sql_value(const nlohmann::json& v) {
  if (v.is_string()) {
    std::string s = "'";
    for (char c : v.get<std::string>()) s += c == '\'' ? std::string("''") : std::string(1, c);
    return s + "'";
  }
  return v.dump();
}

std::string render_bench(const std::vector<BenchRow>& rows, const std::string& format) {
  if (format == "json") {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : rows) arr.push_back(row_json(r));
    return arr.dump(2) + "\n";
  }
  if (format == "sql") {  // llama-bench -o sql: a table `test` and one INSERT per result
    std::string out =
        "CREATE TABLE IF NOT EXISTS test (\n  build_commit TEXT, model TEXT, n_threads INTEGER, attention TEXT, kv_format TEXT, activations TEXT,\n"
        "  numerics TEXT, n_prompt INTEGER, n_gen INTEGER, n_depth INTEGER, n_parallel INTEGER, test TEXT, test_time TEXT, avg_ns INTEGER, stddev_ns INTEGER,\n"
        "  avg_ts REAL, stddev_ts REAL\n);\n";
    std::string cols;
    for (const auto& f : kScalarFields) cols += (cols.empty() ? "" : ", ") + f;
    for (const auto& r : rows) {
      const auto j = row_json(r);
      std::string vals;
      for (const auto& f : kScalarFields) vals += (vals.empty() ? "" : ", ") + sql_value(j[f]);
      out += fmt::format("INSERT INTO test ({}) VALUES ({});\n", cols, vals);
    }
    return out;
  }
  if (format == "csv") {
    render::Table t;
    for (const auto& f : kScalarFields) t.columns.push_back({f, render::Align::kLeft});
    for (const auto& r : rows) {
      const auto j = row_json(r);
      std::vector<std::string> cells;
      for (const auto& f : kScalarFields) cells.push_back(j[f].is_string() ? j[f].get<std::string>() : j[f].dump());
      t.add_row(std::move(cells));
    }
    return render::to_csv(t);
  }
  render::Table t;
  t.columns = {{"model", render::Align::kLeft}, {"threads"}, {"attention", render::Align::kLeft}, {"kv", render::Align::kLeft},
               {"act", render::Align::kLeft}, {"numerics", render::Align::kLeft}, {"test", render::Align::kRight},
               {"t/s", render::Align::kRight}};
  for (const auto& r : rows) {
    const auto [m, s] = mean_std(r.ts());
    t.add_row({r.model, std::to_string(r.threads), r.attention, r.kv_format, r.activations, r.numerics, r.test(),
               fmt::format("{:.2f} ± {:.2f}", m, s)});
  }
  return render::to_markdown(t);
}

std::vector<int64_t> parse_counts(const std::string& text, const char* what) {
  std::vector<int64_t> out;
  for (const auto& item : parse_name_list(text, what)) out.push_back(item == "0" ? 0 : parse_size(item, what));
  return out;
}

}  // namespace

std::unique_ptr<BenchCommand> add_bench_command(CLI::App& parent) {
  auto cmd = std::make_unique<BenchCommand>();
  CLI::App* a = cmd->app = parent.add_subcommand("bench", "llama-bench-style engine speed: prompt processing and generation tok/s");
  a->add_option("--model,-m", cmd->models, "comma-separated checkpoint directories or synthetic presets")->required();
  a->add_option("--n-prompt,-p", cmd->prompt, "prompt-processing tests: tokens prefilled at once (comma list; 0 = none)")
      ->capture_default_str();
  a->add_option("--n-gen,-n", cmd->gen, "generation tests: tokens decoded one by one (comma list; 0 = none)")->capture_default_str();
  a->add_option("--depth,-d", cmd->depth, "context already in the KV cache before each test (comma list)")->capture_default_str();
  a->add_option("--threads,-t", cmd->threads, "engine threads (comma list; 0 = all cores)")->capture_default_str();
  a->add_option("--parallel,-P", cmd->parallel, "sequences run together through one engine step each (comma list)")
      ->capture_default_str();
  a->add_option("--reps,-r", cmd->reps, "timed repetitions per test")->capture_default_str()->check(CLI::PositiveNumber);
  a->add_option("--warmup", cmd->warmup, "untimed runs before the repetitions")->capture_default_str()->check(CLI::NonNegativeNumber);
  a->add_option("--attention", cmd->attention, "native, dense or window")->capture_default_str();
  a->add_option("--kv-format", cmd->kv_format, "bf16 or fp8")->capture_default_str();
  a->add_option("--numerics", cmd->numerics, std::string(evals::kNumericsHelp) + " (per model)");
  a->add_flag("--bf16-activations", cmd->bf16_activations, "weight matmuls read BF16-rounded activations (see generate --help)");
  a->add_option("--seed", cmd->seed, "seed of the token ids (and of preset weights)")->capture_default_str();
  a->add_option("--format", cmd->output, "md, csv, json or sql")->check(CLI::IsMember({"md", "csv", "json", "sql"}))->capture_default_str();
  a->footer(R"(
ppN prefills N seeded token ids in one call; tgN decodes N tokens one at a time. With --depth D the
session first holds D tokens (filled once, untimed; every repetition restarts from a snapshot).
With --parallel P (test "tgN xP"), P sessions at that depth advance together, one Engine::step per
token (or one step of P x N rows for ppN), as the server batches concurrent requests; t/s counts
the tokens of all P. t/s is the mean over repetitions of tokens / time, ± the sample standard deviation.
json/csv/sql carry llama-bench's fields (build_commit, n_threads, n_prompt, n_gen, n_depth, test_time,
avg_ns, stddev_ns, avg_ts, stddev_ts; json adds samples_ns and samples_ts) and ours: attention,
kv_format, activations (bf16: weight matmuls read BF16 activations, as official numerics imply; else
fp32) and numerics (official or fp32, resolved per model). sql prints CREATE TABLE
test and one INSERT per result, e.g. `v4bench bench -m v4-tiny -o sql | sqlite3 bench.db`.)");
  return cmd;
}

int run_bench_command(const BenchCommand& cmd) {
  const auto models = parse_name_list(cmd.models, "model");
  const auto prompts = parse_counts(cmd.prompt, "--n-prompt"), gens = parse_counts(cmd.gen, "--n-gen");
  const auto parallels = parse_counts(cmd.parallel, "--parallel");
  for (int64_t p : parallels)
    if (p < 1) throw UsageError("--parallel values must be at least 1");
  std::vector<int64_t> depths;
  for (const auto& d : parse_name_list(cmd.depth, "--depth")) depths.push_back(d == "0" ? 0 : parse_size(d, "--depth"));
  std::vector<int> threads;
  for (const auto& t : parse_name_list(cmd.threads, "--threads")) {
    char* end = nullptr;
    const long v = std::strtol(t.c_str(), &end, 10);
    if (*end || v < 0 || v > 4096) throw UsageError(fmt::format("invalid --threads '{}': expected a non-negative integer", t));
    threads.push_back(static_cast<int>(v));
  }
  const AttentionMode mode = parse_attention_mode(cmd.attention);
  const KvFormat kv = parse_kv_format(cmd.kv_format);
  // Every model's numerics before the first test runs.
  std::vector<Numerics> numerics;
  for (const auto& model : models) numerics.push_back(evals::resolve_numerics_flag(resolve_model(model), model, cmd.numerics));
  std::vector<std::pair<int64_t, int64_t>> tests;  // (n_prompt, n_gen)
  for (int64_t p : prompts)
    if (p > 0) tests.emplace_back(p, 0);
  for (int64_t g : gens)
    if (g > 0) tests.emplace_back(0, g);
  if (tests.empty()) throw UsageError("bench needs at least one test: --n-prompt or --n-gen above 0");

  using Clock = std::chrono::steady_clock;
  std::vector<BenchRow> rows;
  for (size_t mi = 0; mi < models.size(); ++mi)
    for (int nt : threads) {
      const std::string& model = models[mi];
      const Numerics num = numerics[mi];
      const bool bf16 = cmd.bf16_activations || num == Numerics::kOfficial;  // official implies BF16 GEMM operands
      ThreadPool pool(nt);
      auto engine = Engine::open(model, {&pool}, cmd.seed);
      const ModelConfig& m = engine->config();
      for (int64_t depth : depths) {
        for (const auto& [np, ng] : tests)
          if (depth + np + ng > m.max_position)
            throw UsageError(fmt::format("depth {} + test tokens {} is beyond the maximum of {} ({})", depth, np + ng, model, m.max_position));
        std::mt19937_64 rng(cmd.seed);
        auto ids = [&](int64_t n) {
          std::vector<int32_t> v(static_cast<size_t>(n));
          for (auto& x : v) x = static_cast<int32_t>(rng() % static_cast<uint64_t>(m.vocab));
          return v;
        };
        const SessionOptions so{mode, kv, cmd.bf16_activations, num};
        auto session = engine->new_session(so);
        if (depth > 0) session->prefill(ids(depth));
        const auto at_depth = session->snapshot();
        for (int64_t np_seq : parallels) {
          std::vector<std::unique_ptr<Session>> seqs;
          for (int64_t i = 0; i < np_seq; ++i) seqs.push_back(engine->new_session(so));
          for (const auto& [np, ng] : tests) {
            BenchRow row{model, cmd.attention, cmd.kv_format, bf16 ? "bf16" : "fp32", std::string(numerics_name(num)), pool.size(), np, ng,
                         depth, np_seq, {}, utc_now_iso()};
            std::vector<std::vector<int32_t>> prompt, gen;  // per sequence
            for (int64_t i = 0; i < np_seq; ++i) {
              prompt.push_back(ids(np));
              gen.push_back(ids(ng));
            }
            std::vector<StepItem> items(static_cast<size_t>(np_seq));
            for (int rep = -cmd.warmup; rep < cmd.reps; ++rep) {
              for (auto& s : seqs) s->restore(*at_depth);
              const auto t0 = Clock::now();
              if (np > 0) {
                for (int64_t i = 0; i < np_seq; ++i) items[i] = {seqs[i].get(), prompt[i]};
                engine->step(items);
              }
              for (int64_t k = 0; k < ng; ++k) {
                for (int64_t i = 0; i < np_seq; ++i) items[i] = {seqs[i].get(), std::span<const int32_t>(&gen[i][k], 1)};
                engine->step(items);
              }
              const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
              if (rep >= 0) row.ns.push_back(ns);
            }
            rows.push_back(std::move(row));
          }
        }
      }
    }
  fmt::print("{}", render_bench(rows, cmd.output));
  return 0;
}

}  // namespace v4b::cli
