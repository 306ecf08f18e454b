// Scoring of a flops case: the FLOPs the engine counted in one decode step against the analytic model.
#pragma once

#include <string>

#include "engine/models/cost_model.h"

namespace v4b::evals::flops {

inline constexpr double kFlopsTolerance = 0.01;  // relative, per category

// "" when every category but element-wise work (which the analytic model has no term for) is
// within `tolerance` of the analytic count; else each one that is not, "attention counted 123 vs
// analytic 456", joined with "; ".
std::string flops_mismatch(const DecodeFlops& counted, const DecodeFlops& analytic, double tolerance = kFlopsTolerance);

}  // namespace v4b::evals::flops
