// What the cost suites (kv, flops, analyze) add to the report's context charts and 1M headline:
// one place for which cases count, shared by their three views.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "reports/render/views/view.h"

namespace v4b::views {

inline constexpr int64_t kHeadlineCtx = int64_t{1} << 20;

// The headline entry of a case's model when the case is at 1M tokens and (where it has a storage
// format) stores FP8; null otherwise. Records the case's baseline.
inline ContextCurves::At1M* headline_entry(ContextCurves& curves, const nlohmann::json& row) {
  if (row.value("ctx", int64_t{0}) != kHeadlineCtx) return nullptr;
  if (row.contains("kv_format") && row["kv_format"] != "fp8") return nullptr;
  curves.baseline = row.value("baseline", curves.baseline);
  return &curves.at_1m[row.value("model", "")];
}

inline void add_kv_point(ContextCurves& curves, const nlohmann::json& row, const char* bytes_metric) {
  const std::string name = row.value("model", "") + " " + row.value("kv_format", "");
  auto& s = curves.kv_bytes[name];
  s.name = name;
  s.points.push_back({row.value("ctx", 0.0), row.value(bytes_metric, 0.0)});
}

inline void add_flops_point(ContextCurves& curves, const nlohmann::json& row, const char* fp8eq_metric) {
  const std::string name = row.value("model", "");
  auto& s = curves.flops_fp8eq[name];
  s.name = name;
  s.points.push_back({row.value("ctx", 0.0), row.value(fp8eq_metric, 0.0)});
}

// Sets `into` to the row's metric where the row has it (a later run of the same model wins).
inline void take(std::optional<double>& into, const nlohmann::json& row, const char* name) {
  if (row.contains(name) && row[name].is_number()) into = row[name].get<double>();
}

}  // namespace v4b::views
