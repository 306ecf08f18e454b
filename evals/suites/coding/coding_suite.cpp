#include "evals/suites/coding/coding_suite.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/host.h"
#include "common/units.h"
#include "engine/models/presets.h"
#include "evals/backends/base_url.h"
#include "evals/backends/engine_backend.h"
#include "evals/suites/coding/coding_params.h"
#include "evals/suites/coding/pass_at_k.h"
#include "evals/suites/coding/sandbox.h"
#include "evals/suites/numerics.h"

namespace v4b::evals {

namespace {

namespace names = schema::coding;

using nlohmann::json;
using namespace coding;

const std::vector<std::string> kStatuses = {"pass", "fail", "timeout", "error", "oom"};
constexpr size_t kStoredTextCap = 16384;  // bytes of a program or model output kept per sample

bool has_plus(const std::string& dataset) { return dataset == "humaneval+" || dataset == "mbpp+"; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string capped(const std::string& s) { return s.size() <= kStoredTextCap ? s : s.substr(0, kStoredTextCap) + "\n[truncated]"; }

// The selected problems (by --problems, then --limit) in dataset order.
std::vector<const Problem*> select(const std::vector<Problem>& all, const CodingParams& p) {
  std::vector<const Problem*> out;
  std::set<std::string> wanted(p.tasks.begin(), p.tasks.end());
  for (const auto& id : p.tasks) {
    if (std::none_of(all.begin(), all.end(), [&](const Problem& q) { return q.task_id == id; }))
      throw UsageError(fmt::format("--problems: '{}' is not a problem of {} (ids look like '{}')", id, p.dataset,
                                   all.empty() ? "" : all.front().task_id));
  }
  for (const auto& q : all)
    if (wanted.empty() || wanted.count(q.task_id)) out.push_back(&q);
  if (p.limit > 0 && static_cast<size_t>(p.limit) < out.size()) out.resize(static_cast<size_t>(p.limit));
  return out;
}

GradeOptions grade_options(const CodingParams& p) {
  GradeOptions o;
  o.time_mode = p.time_mode;
  o.time_floor = p.time_floor;
  o.time_factor = p.time_factor;
  o.memory_bytes = p.memory_bytes;
  o.cache_dir = std::filesystem::path(ceilings_cache_path()).parent_path().string();
  return o;
}

}  // namespace

std::string CodingSuite::summary() const { return "execution-based pass@k on HumanEval(+), MBPP(+), LiveCodeBench-style problems"; }

std::string CodingSuite::description() const {
  return R"(Generates n programs per problem (--backend engine | http | oracle | file), runs each against the
problem's tests in a sandbox, and reports pass@k by the unbiased estimator (Chen et al. 2021):
per problem 1 - C(n-c, k)/C(n, k), averaged over problems, with a 95% bootstrap interval over
problems. pass@k is reported only for k <= n. Greedy decoding (n = 1) gives pass@1 = fraction solved.

Datasets (datasets/coding): humaneval (164, check(entry_point)), humaneval+ (164, EvalPlus base + plus
inputs), mbpp (500, test split 11-510, asserts), mbpp-sanitized (257), mbpp+ (378, EvalPlus),
lcb-sample (5 problems of our own in LiveCodeBench's schema: stdin/stdout and call-based tests).

Backends:
  oracle  the canonical solutions (validates the grader: every problem should pass)
  file    a samples JSONL in EvalPlus's format: {"task_id", "completion" | "solution"} per line
  engine  the embedded engine (--model preset or checkpoint dir); base-model prompting, HumanEval
          stop sequences; synthetic presets fold prompt ids into their toy vocabulary; --numerics
          official or fp32 (default official for DeepSeek-V4 checkpoints, fp32 otherwise), resolved
          and stored as the param "numerics"
  http    an OpenAI-compatible server (--base-url http://host:port/v1, --api chat|completions,
          --model; key from --api-key, $V4BENCH_API_KEY or $OPENAI_API_KEY, never stored); chat
          answers are graded from their last ```-fenced block

Grading (spec harness-anchors 3.4-3.5): HumanEval runs prompt + completion + test + check(); EvalPlus
calls the function on every input and compares with the canonical solution's output (exact, floats
within atol/rtol=1e-7, EvalPlus's special oracles); MBPP runs setup code then each assert; LCB
compares stdout line by line (else number by number) or call results with tuples as lists. Each
test's limit is max(--time-floor, --time-factor x the canonical solution's time on it), in CPU time
(--time-mode cpu, load-independent) or wall time (--time-mode wall, as EvalPlus); a sample's limits
sum to at most 60 s. Fail-fast: a sample stops at its first failing test.

Per-sample status (stored in samples with per-test detail): pass, fail (wrong answer), timeout,
error (exception, crash, no verdict), oom (MemoryError under the --memory address-space limit).
A sample passes plus only when it passes base too.

Sandbox: each program runs as python3 in a fresh temp dir, in its own session; where the kernel
allows, in new PID, network and mount namespaces (no network, read-only file system except a 16 MiB
tmpfs scratch dir, private /proc) and, when run by root, as a uid of its own; rlimits on CPU, address space,
file size, open files and processes; a scrubbed environment; stdin /dev/null; output capped; a
wall-clock backstop kills everything it started. The run's host context records what isolation
this host gave (host.coding.sandbox). It is not a VM: a program can still read world-readable files.

Metrics (case `summary`): pass_at_<k> (base tests) and, for humaneval+ / mbpp+, pass_at_<k>_plus
(base + plus), each with _ci_lo / _ci_hi; problems, samples, passed, passed_plus, status_<status>.
Per chunk of problems: problems, samples, passed, passed_plus, status_<status>, gen_s, grade_s.

Examples:
  v4bench run coding --dataset humaneval+ --backend oracle
  v4bench run coding --dataset mbpp+ --backend file --samples-file samples.jsonl --k 1,10
  v4bench run coding --dataset humaneval --backend engine --model v4-tiny --max-new-tokens 64 --limit 2
  v4bench run coding --dataset humaneval+ --backend http --base-url http://localhost:8000/v1 --model m --n 10 --k 1,10 --temperature 0.8)";
}

void CodingSuite::add_options(CLI::App& cmd) {
  cmd.add_option("--dataset", dataset_, "humaneval, humaneval+, mbpp, mbpp-sanitized, mbpp+ or lcb-sample")->capture_default_str();
  cmd.add_option("--backend", backend_, "where programs come from: engine, http, oracle or file")->capture_default_str();
  cmd.add_option("--model,-m", model_, "engine: preset or checkpoint directory; http: the served model's name");
  cmd.add_option("--samples-file", samples_, "file backend: samples JSONL (task_id + completion or solution per line)");
  cmd.add_option("--n", n_, "samples per problem (engine, http, oracle)")->capture_default_str();
  cmd.add_option("--k", k_, "comma-separated k for pass@k, each <= n")->capture_default_str();
  cmd.add_option("--temperature", temperature_, "sampling temperature (0: greedy)")->capture_default_str();
  cmd.add_option("--top-p", top_p_, "nucleus sampling mass")->capture_default_str();
  cmd.add_option("--max-new-tokens", max_new_tokens_, "tokens generated per sample at most")->capture_default_str();
  cmd.add_option("--base-url", base_url_, "http: the server's OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
      ->envname("V4BENCH_BASE_URL");
  cmd.add_option("--api", api_, "http: chat (/chat/completions) or completions (/completions)")->capture_default_str();
  cmd.add_option("--api-key", api_key_, "http: bearer token (default $V4BENCH_API_KEY or $OPENAI_API_KEY; never stored)");
  cmd.add_option("--problems", tasks_, "comma-separated task ids to run (default: all)");
  cmd.add_option("--limit", limit_, "only the first N problems (0: all)")->capture_default_str();
  cmd.add_option("--workers", workers_, "programs graded at once")->capture_default_str();
  cmd.add_option("--chunk", chunk_, "problems per stored case (the unit of resume)")->capture_default_str();
  cmd.add_option("--time-mode", time_mode_, "cpu (limits on CPU time, load-independent) or wall (as EvalPlus)")->capture_default_str();
  cmd.add_option("--time-floor", time_floor_, "per-test limit floor, seconds")->capture_default_str();
  cmd.add_option("--time-factor", time_factor_, "per-test limit as a multiple of the canonical solution's time")->capture_default_str();
  cmd.add_option("--memory", memory_, "address-space limit per program (4g, 512m)")->capture_default_str();
  cmd.add_option("--numerics", numerics_, std::string("engine backend: ") + kNumericsHelp);
}

json CodingSuite::params() const {
  CodingParams p;
  p.dataset = dataset_, p.backend = backend_, p.model = model_, p.n = n_, p.k = parse_size_list(k_, "--k");
  p.temperature = temperature_, p.top_p = top_p_, p.max_new_tokens = max_new_tokens_;
  if (!tasks_.empty()) p.tasks = parse_name_list(tasks_, "--problems entry");
  p.limit = limit_, p.workers = workers_, p.chunk = chunk_;
  p.time_mode = time_mode_, p.time_floor = time_floor_, p.time_factor = time_factor_, p.memory_bytes = parse_size(memory_, "--memory");
  if (!samples_.empty()) p.samples = std::filesystem::absolute(samples_).string();
  p.base_url = base_url_, p.api = api_;
  // The engine's numerics, resolved now so the stored params name what ran.
  if (backend_ != "engine" && !numerics_.empty()) throw UsageError("--numerics applies to --backend engine");
  if (backend_ == "engine" && !model_.empty() && is_runnable(model_)) p.numerics = resolved_numerics_name(model_, numerics_);
  return p.to_json();
}

std::optional<BackendSpec> CodingSuite::backend_spec(const json& params, uint64_t seed) const {
  const CodingParams p = CodingParams::from_json(params);
  BackendSpec spec;
  spec.kind = p.backend;
  if (p.backend == "engine") {
    if (p.model.empty()) throw UsageError("--backend engine needs --model (a synthetic preset or a checkpoint directory)");
    if (!is_runnable(p.model))
      throw UsageError(fmt::format("--model {} has no weights here: the engine backend needs a checkpoint directory or a synthetic preset", p.model));
    // Again: a resumed run's params come from the database.
    resolve_numerics_flag(resolve_model(p.model), p.model, stored_numerics(params));
    spec.numerics = stored_numerics(params);
    // Synthetic presets have toy vocabularies: prompt ids are folded into them (their output is
    // noise anyway). A checkpoint must match its tokenizer.
    spec.fold_ids = !std::filesystem::is_directory(p.model);
  } else if (p.backend == "http") {
    if (p.base_url.empty()) throw UsageError("--backend http needs --base-url http(s)://host:port/v1 (or $V4BENCH_BASE_URL)");
    parse_base_url(p.base_url);
    if (p.model.empty()) throw UsageError("--backend http needs --model (the served model's name)");
    if (p.api != "chat" && p.api != "completions") throw UsageError("--api must be chat or completions");
    spec.base_url = p.base_url;
    spec.api_key = api_key_;
  } else {
    return std::nullopt;  // oracle and file: coding's own sources, no model
  }
  spec.model = p.model;
  spec.seed = seed;  // a synthetic preset's weights
  return spec;
}

std::vector<Cell> CodingSuite::plan(const json& params, uint64_t seed, Backend*) const {
  const CodingParams p = CodingParams::from_json(params);
  p.validate();
  const auto all = load_problems(p.dataset);
  const auto selected = select(all, p);

  // Samples per problem, which bounds k.
  int64_t min_n = p.n;
  if (p.backend == "file") {
    std::map<std::string, int64_t> count;
    for (const auto& [task, program] : read_samples_file(p.samples, all)) ++count[task];
    min_n = INT64_MAX;
    for (const Problem* q : selected) {
      if (!count.count(q->task_id))
        throw UsageError(fmt::format("--samples-file '{}' has no sample for {} (pass --problems or --limit to grade a subset)", p.samples, q->task_id));
      min_n = std::min(min_n, count[q->task_id]);
    }
  }
  for (int64_t k : p.k)
    if (k > min_n)
      throw UsageError(fmt::format("--k {} needs at least {} samples per problem, but {} {}", k, k,
                                   p.backend == "file" ? "the samples file has as few as" : "--n is", min_n));
  if (selected.empty()) throw UsageError("no problems selected");
  try {
    sandbox_isolation();  // no python3: say so before anything is stored
  } catch (const std::exception& e) {
    throw UsageError(fmt::format("the coding sandbox cannot run: {}", e.what()));
  }

  const size_t chunk = static_cast<size_t>(p.chunk);
  std::vector<Case> cases;
  for (size_t i = 0; i < selected.size(); i += chunk) {
    const size_t end = std::min(selected.size(), i + chunk);
    CodingCase cc{p, {}, seed};
    for (size_t j = i; j < end; ++j) cc.chunk_tasks.push_back(selected[j]->task_id);
    cases.push_back({fmt::format("chunk={:03d}|tasks={}..{}", i / chunk, selected[i]->task_id, selected[end - 1]->task_id), cc.to_json()});
  }
  return cells_of(std::move(cases));
}

std::string CodingSuite::model_label(const json& params) const {
  const CodingParams p = CodingParams::from_json(params);
  if (p.backend == "file") return "file:" + std::filesystem::path(p.samples).filename().string();
  if (p.backend == "oracle") return "oracle";
  return p.model.empty() ? p.backend : p.model;
}

json CodingSuite::host_notes(const json&) const { return {{"sandbox", sandbox_isolation_json()}}; }

CaseOutput CodingSuite::measure(const Case& c, Backend* backend) {
  const CodingCase cc = CodingCase::from_json(c.params);
  const CodingParams& p = cc.run;
  if (loaded_dataset_ != p.dataset) {
    problems_ = load_problems(p.dataset);
    loaded_dataset_ = p.dataset;
    backend_impl_.reset();
  }
  if (!grader_) grader_ = std::make_unique<Grader>(grade_options(p));
  if (!backend_impl_) backend_impl_ = make_source(p, problems_, backend);
  const bool plus = has_plus(p.dataset);
  const uint64_t seed = cc.seed;

  std::vector<const Problem*> chunk;
  for (const auto& id : cc.chunk_tasks)
    for (const auto& q : problems_)
      if (q.task_id == id) chunk.push_back(&q);

  const auto t_gen = std::chrono::steady_clock::now();
  std::vector<GradeJob> jobs;
  std::vector<std::pair<int, Generated>> made;  // (sample index within its problem, generated)
  for (const Problem* q : chunk) {
    auto gens = backend_impl_->generate(*q, p.n, seed);
    for (size_t i = 0; i < gens.size(); ++i) {
      jobs.push_back({q, gens[i].program});
      made.emplace_back(static_cast<int>(i), std::move(gens[i]));
    }
  }
  const double gen_s = seconds_since(t_gen);

  const bool tty = isatty(STDERR_FILENO);
  std::mutex print_mu;
  const auto t_grade = std::chrono::steady_clock::now();
  const auto grades = grade_all(*grader_, jobs, p.workers, [&](size_t done, size_t total) {
    if (!tty) return;
    std::lock_guard<std::mutex> lock(print_mu);
    const int width = 30, filled = static_cast<int>(width * done / std::max<size_t>(total, 1));
    fmt::print(stderr, "\r  grading [{}{}] {}/{}{}", std::string(static_cast<size_t>(filled), '#'),
               std::string(static_cast<size_t>(width - filled), '.'), done, total, done == total ? "\n" : "");
  });
  const double grade_s = seconds_since(t_grade);

  CaseOutput out;
  std::map<std::string, int> status_count;
  int passed = 0, passed_plus = 0;
  const std::string& source = p.backend;
  for (size_t i = 0; i < grades.size(); ++i) {
    const Grade& g = grades[i];
    json d = g.to_json();
    d["task_id"] = jobs[i].problem->task_id;
    d["sample"] = made[i].first;
    d["pass"] = g.base_pass;
    if (plus) d["pass_plus"] = g.plus_pass;
    if (source != "oracle") d["program"] = capped(jobs[i].program);
    if (!made[i].second.output.empty()) d["output"] = capped(made[i].second.output);
    if (!made[i].second.info.empty()) d["generation"] = made[i].second.info;
    out.samples.push_back({static_cast<int64_t>(i), std::move(d)});
    ++status_count[g.status];
    passed += g.base_pass;
    passed_plus += g.plus_pass;
  }
  auto add = [&](std::string name, double v, const char* unit = "") { out.metrics.push_back({std::move(name), v, unit}); };
  add(names::kProblems, static_cast<double>(chunk.size()));
  add(names::kSamples, static_cast<double>(grades.size()));
  add(names::kPassed, passed);
  if (plus) add(names::kPassedPlus, passed_plus);
  for (const auto& s : kStatuses) add(names::kStatusPrefix + s, status_count[s]);
  add(names::kGenSeconds, gen_s, "s");
  add(names::kGradeSeconds, grade_s, "s");
  return out;
}

std::optional<CaseOutput> CodingSuite::summarize(const std::vector<store::CaseRecord>& cases) const {
  json first;  // a case's params: the run's, with its seed
  std::map<std::string, ProblemCount> base, plus;
  std::map<std::string, int> status_count;
  int failed_cases = 0, samples = 0;
  for (const auto& c : cases) {
    if (c.key == kSummaryKey) continue;
    if (first.is_null()) first = c.params;
    if (c.status == "failed") {
      ++failed_cases;
      continue;
    }
    for (const auto& s : c.samples) {
      const json& d = s.details;
      if (!d.contains("task_id")) continue;
      const std::string task = d["task_id"];
      ++samples;
      ++status_count[d.value("status", "error")];
      ++base[task].n;
      base[task].c += d.value("pass", false);
      ++plus[task].n;
      plus[task].c += d.value("pass_plus", false);
    }
  }
  if (first.is_null()) return std::nullopt;
  const CodingCase cc = CodingCase::from_json(first);
  CaseOutput out;
  auto add = [&](std::string name, double v) { out.metrics.push_back({std::move(name), v, ""}); };
  add(names::kProblems, static_cast<double>(base.size()));
  add(names::kSamples, samples);
  int64_t passed = 0, passed_plus = 0;
  for (const auto& [task, pc] : base) passed += pc.c;
  for (const auto& [task, pc] : plus) passed_plus += pc.c;
  add(names::kPassed, static_cast<double>(passed));
  if (has_plus(cc.run.dataset)) add(names::kPassedPlus, static_cast<double>(passed_plus));
  for (const auto& s : kStatuses) add(names::kStatusPrefix + s, status_count[s]);
  std::vector<ProblemCount> base_counts, plus_counts;
  int64_t min_n = INT64_MAX;
  for (const auto& [task, pc] : base) {
    base_counts.push_back(pc);
    plus_counts.push_back(plus[task]);
    min_n = std::min(min_n, pc.n);
  }
  for (int64_t k : cc.run.k) {
    if (base_counts.empty() || k > min_n) continue;  // only where every problem has k samples
    const auto emit = [&](const std::string& name, const std::vector<ProblemCount>& counts) {
      const PassAtK r = mean_pass_at_k(counts, k, cc.seed);
      add(name, r.value);
      add(name + names::kCiLoSuffix, r.ci_lo);
      add(name + names::kCiHiSuffix, r.ci_hi);
    };
    emit(fmt::format("{}{}", names::kPassAtPrefix, k), base_counts);
    if (has_plus(cc.run.dataset)) emit(fmt::format("{}{}_plus", names::kPassAtPrefix, k), plus_counts);
  }
  if (failed_cases > 0)
    out.failure = fmt::format("pass@k covers only the problems of the chunks that finished: {} chunk(s) failed (see their errors)", failed_cases);
  return out;
}

}  // namespace v4b::evals
