#include "reports/compare/compare.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "common/errors.h"
#include "reports/stats/stats.h"

namespace v4b::compare {

using nlohmann::json;

namespace {

bool find_metric_value(const store::CaseRecord& c, const std::string& name, double* out) {
  for (const auto& m : c.metrics)
    if (m.name == name) {
      *out = m.value;
      return true;
    }
  return false;
}

std::string group_of(const store::CaseRecord& c, const std::vector<std::string>& by) {
  if (by.empty()) return c.key;
  if (by.size() == 1 && by[0] == "*") return "all cases";
  std::string g;
  for (const auto& k : by) g += fmt::format("{}{}={}", g.empty() ? "" : "|", k, c.params.contains(k) ? c.params[k].dump() : "-");
  return g;
}

// A sample's value of `field` as a number (booleans 0/1); false when absent or not a number.
bool sample_value(const store::Sample& s, const std::string& field, double* out) {
  if (!s.details.is_object() || !s.details.contains(field)) return false;
  const json& v = s.details[field];
  if (v.is_boolean()) *out = v.get<bool>() ? 1 : 0;
  else if (v.is_number()) *out = v.get<double>();
  else return false;
  return true;
}

std::string pair_key(const std::string& case_key, const store::Sample& s, const std::string& pair_by) {
  if (pair_by.empty() || !s.details.is_object() || !s.details.contains(pair_by)) return case_key + "#" + std::to_string(s.index);
  return case_key + "#" + s.details[pair_by].dump();
}

Test parse_test(const std::string& t, size_t i) {
  if (t == "none" || t.empty()) return Test::kNone;
  if (t == "mcnemar") return Test::kMcNemar;
  if (t == "bootstrap") return Test::kBootstrap;
  if (t == "mann_whitney") return Test::kMannWhitney;
  throw UsageError(fmt::format("gate rule {}: test '{}' is not one of none, mcnemar, bootstrap, mann_whitney", i, t));
}

std::string test_name(Test t) {
  switch (t) {
    case Test::kMcNemar: return "mcnemar";
    case Test::kBootstrap: return "bootstrap";
    case Test::kMannWhitney: return "mann_whitney";
    case Test::kNone: break;
  }
  return "none";
}

}  // namespace

std::vector<GateRule> parse_gate(const json& gate) {
  if (!gate.is_object() || !gate.contains("rules") || !gate["rules"].is_array())
    throw UsageError("a gate file is a JSON object with a \"rules\" array");
  static const std::set<std::string> known = {"metric", "suite", "direction", "abs_tol", "rel_tol", "min_effect", "alpha",
                                              "test", "sample_field", "pair_by", "group_by"};
  std::vector<GateRule> rules;
  for (size_t i = 0; i < gate["rules"].size(); ++i) {
    const json& r = gate["rules"][i];
    if (!r.is_object()) throw UsageError(fmt::format("gate rule {} is not an object", i));
    for (const auto& [k, v] : r.items())
      if (!known.count(k)) throw UsageError(fmt::format("gate rule {}: unknown key '{}'", i, k));
    try {
      GateRule g;
      g.metric = r.at("metric").get<std::string>();
      g.suite = r.value("suite", "");
      const std::string dir = r.value("direction", "higher");
      if (dir != "higher" && dir != "lower") throw UsageError(fmt::format("gate rule {}: direction must be \"higher\" or \"lower\" (better)", i));
      g.higher_is_better = dir == "higher";
      g.abs_tol = r.value("abs_tol", 0.0);
      g.rel_tol = r.value("rel_tol", 0.0);
      g.min_effect = r.value("min_effect", 0.0);
      g.alpha = r.value("alpha", 0.05);
      if (g.abs_tol < 0 || g.rel_tol < 0 || g.min_effect < 0 || g.alpha <= 0 || g.alpha >= 1)
        throw UsageError(fmt::format("gate rule {}: tolerances must be >= 0 and alpha in (0, 1)", i));
      g.test = parse_test(r.value("test", "none"), i);
      g.sample_field = r.value("sample_field", "");
      if (g.test != Test::kNone && g.sample_field.empty())
        throw UsageError(fmt::format("gate rule {}: test '{}' needs a sample_field", i, test_name(g.test)));
      g.pair_by = r.value("pair_by", "");
      g.group_by = r.value("group_by", std::vector<std::string>{});
      rules.push_back(std::move(g));
    } catch (const json::exception& e) {
      throw UsageError(fmt::format("gate rule {}: {}", i, e.what()));
    }
  }
  return rules;
}

bool Comparison::regressed() const {
  return std::any_of(checks.begin(), checks.end(), [](const Check& c) { return c.regressed; });
}

Comparison compare_runs(const LoadedRun& base, const LoadedRun& cand, const std::vector<GateRule>& rules, uint64_t seed) {
  Comparison out;
  if (base.info.suite != cand.info.suite)
    throw UsageError(fmt::format("{} is a {} run and {} a {} run: compare runs of one suite", base.label, base.info.suite, cand.label,
                                 cand.info.suite));
  if (base.info.model != cand.info.model) out.mismatches.push_back(fmt::format("model: {} vs {}", base.info.model, cand.info.model));
  json bp = base.info.params, cp = cand.info.params;
  for (json* p : {&bp, &cp})
    if (p->is_object()) p->erase("seed");
  if (bp != cp)
    for (const auto& [k, v] : bp.items())
      if (!cp.contains(k) || cp[k] != v) out.mismatches.push_back(fmt::format("params.{}: {} vs {}", k, v.dump(), cp.value(k, json()).dump()));

  std::map<std::string, const store::CaseRecord*> cand_by_key;
  for (const auto& c : cand.cases) cand_by_key[c.key] = &c;
  std::vector<std::pair<const store::CaseRecord*, const store::CaseRecord*>> shared;
  for (const auto& b : base.cases) {
    auto it = cand_by_key.find(b.key);
    if (it == cand_by_key.end()) out.mismatches.push_back("case only in the base: " + b.key);
    else shared.push_back({&b, it->second});
  }
  std::set<std::string> base_keys;
  for (const auto& b : base.cases) base_keys.insert(b.key);
  for (const auto& c : cand.cases)
    if (!base_keys.count(c.key)) out.mismatches.push_back("case only in the candidate: " + c.key);

  // Every metric both sides have, averaged over the shared cases.
  std::map<std::string, MetricDelta> deltas;
  for (auto [b, c] : shared)
    for (const auto& m : b->metrics) {
      double cv = 0;
      if (!find_metric_value(*c, m.name, &cv)) continue;
      MetricDelta& d = deltas[m.name];
      d.metric = m.name;
      ++d.cases;
      d.base_mean += m.value;
      d.cand_mean += cv;
    }
  for (auto& [k, d] : deltas) {
    d.base_mean /= double(d.cases);
    d.cand_mean /= double(d.cases);
    out.deltas.push_back(d);
  }

  for (const GateRule& r : rules) {
    if (!r.suite.empty() && r.suite != base.info.suite) continue;
    struct Group {
      double base_sum = 0, cand_sum = 0;
      int64_t cases = 0;
      bool missing = false;
      std::map<std::string, double> base_s, cand_s;  // pair key -> sample value
    };
    std::map<std::string, Group> groups;
    // A group's metric is the mean over its cases that carry it; its samples come from all its
    // cases (a suite may keep the metric in a summary case and the samples in the others).
    for (auto [b, c] : shared) {
      Group& g = groups[group_of(*b, r.group_by)];
      double bv = 0, cv = 0;
      if (find_metric_value(*b, r.metric, &bv)) {
        if (find_metric_value(*c, r.metric, &cv)) {
          g.base_sum += bv;
          g.cand_sum += cv;
          ++g.cases;
        } else {
          g.missing = true;
        }
      }
      if (r.test == Test::kNone) continue;
      double v = 0;
      for (const auto& s : b->samples)
        if (sample_value(s, r.sample_field, &v)) g.base_s[pair_key(b->key, s, r.pair_by)] = v;
      for (const auto& s : c->samples)
        if (sample_value(s, r.sample_field, &v)) g.cand_s[pair_key(c->key, s, r.pair_by)] = v;
    }
    for (auto& [name, g] : groups) {
      if (g.cases == 0 && !g.missing) continue;  // no case of this group has the metric
      Check ck;
      ck.metric = r.metric;
      ck.group = name;
      ck.test = test_name(r.test);
      if (g.missing) {
        ck.regressed = true;
        ck.why = fmt::format("{} is missing from the candidate ({})", r.metric, name);
        out.checks.push_back(ck);
        continue;
      }
      ck.base = g.base_sum / double(g.cases);
      ck.cand = g.cand_sum / double(g.cases);
      ck.threshold = std::max({r.abs_tol, r.rel_tol * std::fabs(ck.base), r.min_effect});
      const double worse = r.higher_is_better ? ck.base - ck.cand : ck.cand - ck.base;
      if (r.test == Test::kMcNemar || r.test == Test::kBootstrap) {
        int64_t only_base = 0, only_cand = 0;
        std::vector<double> diffs;
        for (const auto& [k, bv] : g.base_s) {
          auto it = g.cand_s.find(k);
          if (it == g.cand_s.end()) continue;
          diffs.push_back(it->second - bv);
          only_base += bv != 0 && it->second == 0;
          only_cand += bv == 0 && it->second != 0;
        }
        ck.n = static_cast<int64_t>(diffs.size());
        if (ck.n > 0)
          ck.p = r.test == Test::kMcNemar ? stats::mcnemar_exact_p(only_base, only_cand) : stats::bootstrap_mean(diffs, seed).p_two_sided;
      } else if (r.test == Test::kMannWhitney) {
        std::vector<double> x, y;
        for (const auto& [k, v] : g.base_s) x.push_back(v);
        for (const auto& [k, v] : g.cand_s) y.push_back(v);
        ck.n = static_cast<int64_t>(x.size() + y.size());
        if (!x.empty() && !y.empty()) ck.p = stats::mann_whitney(x, y).p_two_sided;
      }
      const bool beyond = worse > ck.threshold;
      const bool significant = ck.p < 0 || ck.p < r.alpha;
      ck.regressed = beyond && significant;
      if (ck.regressed)
        ck.why = fmt::format("{} {} from {:.6g} to {:.6g} ({:+.6g}, beyond the tolerance {:.6g}){}", r.metric,
                             r.higher_is_better ? "fell" : "rose", ck.base, ck.cand, ck.cand - ck.base, ck.threshold,
                             ck.p >= 0 ? fmt::format(", {} p = {:.3g} < {}", ck.test, ck.p, r.alpha) : "");
      out.checks.push_back(ck);
    }
  }
  return out;
}

std::string markdown(const Comparison& c, const LoadedRun& base, const LoadedRun& cand, bool allow_mismatch) {
  std::string md;
  const bool blocked = !c.mismatches.empty() && !allow_mismatch;
  const std::string verdict = blocked ? "NOT COMPARABLE" : c.regressed() ? "REGRESSION" : "PASS";
  md += fmt::format("## v4bench compare: {}\n\nbase {} ({}, {}) vs candidate {} ({}, {})\n\n", verdict, base.label, base.info.suite,
                    base.info.model, cand.label, cand.info.suite, cand.info.model);
  if (!c.mismatches.empty()) {
    md += blocked ? "The runs differ, so nothing was judged (pass --allow-mismatch to compare anyway):\n\n"
                  : "The runs differ (compared anyway, --allow-mismatch):\n\n";
    for (const auto& m : c.mismatches) md += "- " + m + "\n";
    md += "\n";
  }
  if (c.regressed()) {
    md += "Regressed:\n\n";
    for (const auto& ck : c.checks)
      if (ck.regressed) md += "- **" + ck.metric + "** (" + ck.group + "): " + ck.why + "\n";
    md += "\n";
  }
  if (!c.checks.empty()) {
    md += "| metric | group | base | candidate | delta | tolerance | test | p | n | verdict |\n|---|---|---:|---:|---:|---:|---|---:|---:|---|\n";
    for (const auto& ck : c.checks)
      md += fmt::format("| {} | {} | {:.6g} | {:.6g} | {:+.6g} | {:.6g} | {} | {} | {} | {} |\n", ck.metric, ck.group, ck.base, ck.cand,
                        ck.cand - ck.base, ck.threshold, ck.test, ck.p < 0 ? "-" : fmt::format("{:.3g}", ck.p), ck.n,
                        ck.regressed ? "regressed" : "ok");
    md += "\n";
  }
  md += "| metric | cases | base mean | candidate mean | delta | relative |\n|---|---:|---:|---:|---:|---:|\n";
  for (const auto& d : c.deltas)
    md += fmt::format("| {} | {} | {:.6g} | {:.6g} | {:+.6g} | {} |\n", d.metric, d.cases, d.base_mean, d.cand_mean, d.cand_mean - d.base_mean,
                      d.base_mean != 0 ? fmt::format("{:+.2f}%", 100 * (d.cand_mean - d.base_mean) / std::fabs(d.base_mean)) : "-");
  return md;
}

json to_json(const Comparison& c, const LoadedRun& base, const LoadedRun& cand) {
  json checks = json::array(), deltas = json::array();
  for (const auto& ck : c.checks)
    checks.push_back({{"metric", ck.metric}, {"group", ck.group}, {"base", ck.base}, {"cand", ck.cand}, {"threshold", ck.threshold},
                      {"test", ck.test}, {"p", ck.p < 0 ? json() : json(ck.p)}, {"n", ck.n}, {"regressed", ck.regressed}, {"why", ck.why}});
  for (const auto& d : c.deltas)
    deltas.push_back({{"metric", d.metric}, {"cases", d.cases}, {"base_mean", d.base_mean}, {"cand_mean", d.cand_mean}});
  return {{"base", base.label}, {"cand", cand.label}, {"suite", base.info.suite}, {"mismatches", c.mismatches},
          {"regressed", c.regressed()}, {"checks", checks}, {"deltas", deltas}};
}

}  // namespace v4b::compare
