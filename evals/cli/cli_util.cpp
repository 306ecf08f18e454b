#include "evals/cli/cli_util.h"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "engine/models/presets.h"
#include "reports/render/views/view.h"
#include "reports/store/store.h"

namespace v4b::cli {

using nlohmann::json;

void add_common(CLI::App& cmd, Common& c, bool with_seed) {
  cmd.add_option("--db", c.db, "results database (SQLite; created if absent; default $V4BENCH_DB or runs/v4bench.db)")
      ->capture_default_str();
  cmd.add_option("--format", c.format, "output format")
      ->check(CLI::IsMember({"table", "md", "json", "csv"}))
      ->capture_default_str();
  if (with_seed) cmd.add_option("--seed", c.seed, "seed for every random choice, recorded with the run")->capture_default_str();
}

std::string summary_line(const evals::RunOutcome& o, const std::string& suite, const std::string& db) {
  return fmt::format("run {} ({}): {} — {} cases ({} run now, {} resumed, {} failed) in {:.2f} s; stored in {}", o.run_id, suite,
                     o.status, o.planned, o.executed, o.resumed, o.failed, o.wall_s, db);
}

void print_run_result(evals::Suite& suite, const evals::RunOutcome& o, const Common& c, bool rows_only) {
  store::Store db(c.db);
  const auto cases = db.cases(o.run_id);
  for (const auto& rec : cases)  // on stderr whatever the format, so a failed run always says why
    if (rec.status == "failed") fmt::print(stderr, "case {} failed: {}\n", rec.key, views::failure_reason(rec));
  if (c.format == "json") {
    json rows = json::array();
    for (const auto& rec : cases) rows.push_back(views::case_row(rec));
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
  fmt::print("{}", render_table(views::view_of(suite.name()).table(cases), c.format));
  if (c.format == "csv") fmt::print(stderr, "{}\n", summary_line(o, suite.name(), c.db));
  else fmt::print("\n{}\n", summary_line(o, suite.name(), c.db));
}

std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag) {
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
    if (item.empty()) throw UsageError(fmt::format("empty entry in {} '{}'", flag, text));
    int32_t id = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (ec != std::errc() || end != item.data() + item.size() || id < 0)
      throw UsageError(fmt::format("invalid token id '{}' in {}: expected a non-negative integer", item, flag));
    ids.push_back(id);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return ids;
}

std::string synthetic_presets() {
  std::string s;
  for (const auto& p : preset_list())
    if (preset_config_json(p.name).value("synthetic", false)) s += (s.empty() ? "" : ", ") + p.name;
  return s;
}

}  // namespace v4b::cli
