// Metric names of a `flops` case (evals/suites/flops writes them, reports/render/views reads them).
// Also per category: flops_<category> and flops_<category>_analytic.
#pragma once

namespace v4b::schema::flops {
inline constexpr const char* kFlops = "flops";  // raw decode FLOPs per token, counted
inline constexpr const char* kFlopsAnalytic = "flops_analytic";
inline constexpr const char* kFlopsFp8eq = "flops_fp8eq";  // FP8 GEMMs counted at half weight
inline constexpr const char* kFlopsFp8eqAnalytic = "flops_fp8eq_analytic";
inline constexpr const char* kFlopsRatio = "flops_ratio";  // fp8eq against the baseline's
inline constexpr const char* kFlopsRawRatio = "flops_raw_ratio";
inline constexpr const char* kFlopsElementwise = "flops_elementwise";
inline constexpr const char* kProjected = "projected";
}  // namespace v4b::schema::flops
