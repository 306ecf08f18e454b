#include "evals/cli/run_views.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <charconv>
#include <optional>

#include <fmt/format.h>

#include "common/errors.h"
#include "reports/render/views/view.h"

namespace v4b::cli {

using nlohmann::json;

std::string render_table(const render::Table& t, const std::string& format) {
  if (format == "md") return render::to_markdown(t);
  if (format == "csv") return render::to_csv(t);
  return render::to_text(t);
}

json run_json(const store::RunInfo& r) {
  return {{"id", r.id},           {"suite", r.suite},         {"model", r.model},
          {"params", r.params},   {"host", r.host},           {"status", r.status},
          {"seed", r.seed},       {"engine_commit", r.engine_commit},
          {"created_at", r.created_at}, {"finished_at", r.finished_at}, {"n_cases", r.n_cases}};
}

json run_with_cases_json(const store::Store& db, const store::RunInfo& r) {
  json out = run_json(r);
  out["cases"] = json::array();
  for (const auto& c : db.cases(r.id)) {
    json metrics = json::object(), units = json::object();
    for (const auto& m : c.metrics) {
      metrics[m.name] = m.value;
      if (!m.unit.empty()) units[m.name] = m.unit;
    }
    out["cases"].push_back({{"key", c.key}, {"params", c.params}, {"status", c.status}, {"wall_s", c.wall_s},
                            {"metrics", metrics}, {"units", units}});
  }
  return out;
}

// Long format: one line per metric of every case, easy to load anywhere.
render::Table long_table(const store::Store& db, const std::vector<store::RunInfo>& runs) {
  render::Table t;
  t.columns = {{"run_id"}, {"suite"}, {"model"}, {"case"}, {"status"}, {"metric"}, {"value"}, {"unit"}};
  for (const auto& r : runs)
    for (const auto& c : db.cases(r.id))
      for (const auto& m : c.metrics)
        t.add_row({std::to_string(r.id), r.suite, r.model, c.key, c.status, m.name, fmt::format("{:.17g}", m.value), m.unit});
  return t;
}

render::Table run_table(const store::Store& db, const store::RunInfo& r) { return views::view_of(r.suite).table(db.cases(r.id)); }

std::string samples_jsonl(const store::Store& db, const store::RunInfo& r) {
  const views::SuiteView& view = views::view_of(r.suite);
  std::string out;
  for (const auto& c : db.cases(r.id))
    for (const auto& s : c.samples) {
      json row = {{"run_id", r.id}, {"suite", r.suite}};
      row.update(view.sample_row(c, s));
      out += row.dump() + "\n";
    }
  return out;
}

void write_file(const std::string& path, const std::string& text) {
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) throw UsageError(fmt::format("cannot create '{}': {}", parent.string(), ec.message()));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f || !(f << text)) throw UsageError(fmt::format("cannot write '{}'", path));
  }
  std::filesystem::rename(tmp, path);
  fmt::print(stderr, "wrote {}\n", path);
}

void write_run_outputs(const store::Store& db, const store::RunInfo& r, const std::string& dir) {
  write_file(fmt::format("{}/results_run{}.json", dir, r.id), run_with_cases_json(db, r).dump(2) + "\n");
  write_file(fmt::format("{}/samples_{}_run{}.jsonl", dir, r.suite, r.id), samples_jsonl(db, r));
}

std::unique_ptr<store::Store> open_existing(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw UsageError(fmt::format("no results database at '{}' (run a suite first, or pass --db)", path));
  return std::make_unique<store::Store>(path);
}

std::string default_db_path() {
  const char* env = std::getenv("V4BENCH_DB");
  return env != nullptr && *env != '\0' ? env : "runs/v4bench.db";
}

// A run id, or "last" for the newest run.
store::RunInfo require_run(const store::Store& db, const std::string& text) {
  std::optional<store::RunInfo> r;
  if (text == "last") {
    auto newest = db.list_runs({"", "", 1});
    if (!newest.empty()) r = newest.front();
  } else {
    int64_t id = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc() || end != text.data() + text.size() || id <= 0)
      throw UsageError(fmt::format("invalid run id '{}': expected a positive integer or 'last'", text));
    r = db.run(id);
  }
  if (!r) throw UsageError(fmt::format("run {} is not in '{}' (see `v4bench runs list`)", text, db.path()));
  return *r;
}

}  // namespace v4b::cli
