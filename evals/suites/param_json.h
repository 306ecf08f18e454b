// Reading a suite's stored parameters back: one field at a time, with the suite's default where a
// run stored before the field existed lacks it. What every suite's typed parameters use.
#pragma once

#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"

namespace v4b::evals {

// j[key] as T when present (and not null), else `fallback`; a value of another type is a
// UsageError naming the suite and the key.
template <class T>
T param_or(const nlohmann::json& j, const char* key, T fallback, std::string_view suite) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  try {
    return j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw UsageError(fmt::format("{} parameter \"{}\" has the wrong type: {}", suite, key, j[key].dump()));
  }
}

}  // namespace v4b::evals
