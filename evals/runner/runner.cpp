#include "evals/runner/runner.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/host.h"
#include "reports/render/views/view.h"

namespace v4b::evals {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A case that failed keeps what it measured, plus a sample saying why.
void fail(store::CaseRecord& rec, const std::string& why) {
  rec.status = "failed";
  rec.samples.push_back({static_cast<int64_t>(rec.samples.size()), {{"error", why}}});
}

void fill(store::CaseRecord& rec, CaseOutput&& r) {
  rec.metrics = std::move(r.metrics);
  rec.samples = std::move(r.samples);
  rec.artifacts = std::move(r.artifacts);
  if (!r.failure.empty()) fail(rec, r.failure);
}

int kill_after_cases() {
  const char* v = std::getenv("V4BENCH_TEST_KILL_AFTER_CASES");
  return v ? std::atoi(v) : 0;
}

}  // namespace

RunOutcome run_suite(Suite& suite, const RunRequest& req) {
  const auto t0 = std::chrono::steady_clock::now();
  nlohmann::json params = req.params;
  uint64_t seed = req.seed;
  std::unique_ptr<store::Store> db;

  if (req.resume) {
    if (!std::filesystem::exists(req.db_path)) throw UsageError(fmt::format("cannot resume: no database at '{}'", req.db_path));
    db = std::make_unique<store::Store>(req.db_path);
    auto info = db->run(*req.resume);
    if (!info) throw UsageError(fmt::format("cannot resume: run {} is not in '{}'", *req.resume, req.db_path));
    if (info->suite != suite.name())
      throw UsageError(fmt::format("cannot resume: run {} is a '{}' run, not '{}'", *req.resume, info->suite, suite.name()));
    params = info->params;
    seed = info->seed;
  }

  std::unique_ptr<Backend> backend;
  if (const auto spec = suite.backend_spec(params, seed)) backend = make_backend(*spec);
  const std::vector<Cell> cells = suite.plan(params, seed, backend.get());
  if (!db) db = std::make_unique<store::Store>(req.db_path);

  RunOutcome out;
  for (const Cell& cell : cells) out.planned += static_cast<int>(cell.cases.size());
  if (req.resume) {
    out.run_id = *req.resume;
    db->set_run_status(out.run_id, "running");
  } else {
    nlohmann::json host = host_context();
    if (nlohmann::json notes = suite.host_notes(params); !notes.is_null()) host[suite.name()] = std::move(notes);
    if (backend) host["backend"] = backend->identity();
    out.run_id = db->create_run({suite.name(), suite.model_label(params), params, host.value("engine_commit", ""), host, seed});
  }

  const auto done_keys = db->case_keys(out.run_id);
  const std::set<std::string> done(done_keys.begin(), done_keys.end());
  const int kill_after = kill_after_cases();
  int committed = 0, index = 0;
  for (const Cell& cell : cells) {
    const auto missing = std::count_if(cell.cases.begin(), cell.cases.end(), [&](const Case& c) { return !done.count(c.key); });
    if (missing == 0) {
      index += static_cast<int>(cell.cases.size());
      out.resumed += static_cast<int>(cell.cases.size());
      continue;
    }
    const auto tc = std::chrono::steady_clock::now();
    std::vector<CaseOutput> outputs;
    std::string cell_failure;
    try {
      outputs = suite.execute(cell, backend.get());
      if (outputs.size() != cell.cases.size())
        throw std::logic_error(fmt::format("{} returned {} outputs for a cell of {} cases", suite.name(), outputs.size(), cell.cases.size()));
    } catch (const UsageError&) {
      throw;  // a bad parameter the plan could not see: the user must fix it
    } catch (const std::exception& e) {
      cell_failure = e.what();
    }
    const double wall = seconds_since(tc) / static_cast<double>(missing);  // the cell's time, shared by what it produced
    for (size_t i = 0; i < cell.cases.size(); ++i) {
      const Case& c = cell.cases[i];
      ++index;
      if (done.count(c.key)) {
        ++out.resumed;
        continue;
      }
      store::CaseRecord rec{c.key, c.params};
      if (cell_failure.empty()) fill(rec, std::move(outputs[i]));
      else fail(rec, cell_failure);
      out.failed += rec.status == "failed";
      rec.wall_s = wall;
      db->commit_case(out.run_id, rec);
      ++out.executed;
      if (req.progress)
        fmt::print(stderr, "[{}/{}] {} {} ({:.2f} s){}\n", index, out.planned, c.key, rec.status, rec.wall_s,
                   rec.status == "failed" ? ": " + views::failure_reason(rec) : "");
      if (kill_after > 0 && ++committed >= kill_after) std::raise(SIGKILL);
    }
  }
  if (!done.count(kSummaryKey)) {  // numbers that span cases, once all of them are stored
    store::CaseRecord rec{kSummaryKey, nlohmann::json::object()};
    const auto tc = std::chrono::steady_clock::now();
    bool has_summary = true;
    try {
      std::optional<CaseOutput> s = suite.summarize(db->cases(out.run_id));
      has_summary = s.has_value();
      if (s) fill(rec, std::move(*s));
    } catch (const std::exception& e) {
      fail(rec, e.what());
    }
    if (has_summary) {
      rec.wall_s = seconds_since(tc);
      db->commit_case(out.run_id, rec);
      if (req.progress) fmt::print(stderr, "[summary] {} ({:.2f} s)\n", rec.status, rec.wall_s);
    }
  }
  int failed_total = 0;  // a resumed run keeps the cases that failed before
  for (const auto& rec : db->cases(out.run_id)) failed_total += rec.status == "failed";
  out.status = failed_total ? "failed" : "done";
  db->set_run_status(out.run_id, out.status);
  out.wall_s = seconds_since(t0);
  return out;
}

}  // namespace v4b::evals
