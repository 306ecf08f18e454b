#include "evals/suites/flops/scoring.h"

#include <cmath>

#include <fmt/format.h>

namespace v4b::evals::flops {

std::string flops_mismatch(const DecodeFlops& counted, const DecodeFlops& analytic, double tolerance) {
  std::string out;
  for (int k = 0; k < kNumFlopCategories; ++k) {
    const auto cat = static_cast<FlopCategory>(k);
    if (cat == FlopCategory::kElementwise) continue;
    if (std::fabs(double(counted[cat]) - double(analytic[cat])) > tolerance * double(analytic[cat]))
      out += fmt::format("{}{} counted {} vs analytic {}", out.empty() ? "" : "; ", flop_category_name(cat), counted[cat], analytic[cat]);
  }
  return out;
}

}  // namespace v4b::evals::flops
