// Scoring of a kv case: the bytes the engine's caches hold against the analytic model.
#pragma once

#include <string>

#include "engine/models/cost_model.h"

namespace v4b::evals::kv {

// "" when every kind (compressor state included) matches the analytic model to the byte; else
// each differing kind, "window measured 123 vs analytic 456", joined with "; ".
std::string kv_mismatch(const KvBytes& measured, const KvBytes& analytic);

}  // namespace v4b::evals::kv
