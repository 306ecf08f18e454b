// A suite turns typed parameters into deterministic cases and measures each case. The runner
// (evals/runner) owns the loop, the store and resume; a suite never touches the database.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "evals/backends/backend.h"
#include "reports/store/store.h"

namespace v4b::evals {

struct Case {
  std::string key;         // stable across runs of the same params and seed
  nlohmann::json params;
};

// Cases measured together because they share work (one prompt set under several attention modes,
// one base pass against several candidates). The runner executes a cell once and commits each of
// its cases in its own transaction; a resumed run re-executes a cell only for its missing cases.
struct Cell {
  std::vector<Case> cases;
  nlohmann::json params;  // what the cases share, for execute() (not stored; each case stores its own)
};
// Each case a cell of its own: what suites whose cases share no work plan.
std::vector<Cell> cells_of(std::vector<Case> cases);

struct CaseOutput {
  std::string failure;  // non-empty: the case is stored as failed, with its metrics and this reason
  std::vector<store::Metric> metrics;
  std::vector<store::Sample> samples;
  std::vector<store::Artifact> artifacts;
};

class Suite {
 public:
  virtual ~Suite() = default;
  virtual std::string name() const = 0;
  virtual std::string summary() const = 0;      // one line, shown in `v4bench run --help`
  virtual std::string description() const = 0;  // shown under the suite's --help: what it measures, metric names

  // Binds the suite's flags to `cmd`; after parsing, params() returns them as JSON. The stored
  // params are all a resume needs to re-plan the same cases.
  virtual void add_options(CLI::App& cmd) = 0;
  virtual nlohmann::json params() const = 0;

  // The model backend a run of these params talks to (evals/backends), or none (the default: the
  // suite needs no model, or steps engine timelines itself). The runner builds it once, before
  // plan(), and hands it to plan() and execute(). Throws UsageError for what cannot name one.
  virtual std::optional<BackendSpec> backend_spec(const nlohmann::json& params, uint64_t seed) const;
  // Validates params and expands them into cells of cases, deterministically from (params, seed).
  // Throws UsageError naming the bad parameter; called before anything is written. `backend` is the
  // run's (null when validating a plan file ahead of its run: checks that need the model wait).
  virtual std::vector<Cell> plan(const nlohmann::json& params, uint64_t seed, Backend* backend) const = 0;
  // The model label stored with the run; by default params["models"] joined with commas.
  virtual std::string model_label(const nlohmann::json& params) const;
  // Measures a cell: one output per case, in the cell's order. Throwing fails every case of the
  // cell with the reason. By default, measure() for each case.
  virtual std::vector<CaseOutput> execute(const Cell& cell, Backend* backend);

  // Once every planned case is stored (on a fresh or a resumed run), a suite whose headline numbers
  // span cases (pass@k over all problems) returns them here; the runner stores them as one more case
  // with key kSummaryKey. Default: none.
  virtual std::optional<CaseOutput> summarize(const std::vector<store::CaseRecord>& cases) const;
  // Facts about this host that matter to the suite's results (e.g. how the coding sandbox isolates
  // programs), stored in the run's host context under the suite's name. Default: none (null).
  virtual nlohmann::json host_notes(const nlohmann::json& params) const;

 protected:
  // One case on its own, for suites whose cells are single cases (the default execute()).
  virtual CaseOutput measure(const Case& c, Backend* backend);
};

inline constexpr const char* kSummaryKey = "summary";

struct SuiteEntry {
  std::string name;
  std::function<std::unique_ptr<Suite>()> make;
};
const std::vector<SuiteEntry>& suite_registry();
// Throws UsageError listing the known suites.
std::unique_ptr<Suite> make_suite(const std::string& name);

}  // namespace v4b::evals
