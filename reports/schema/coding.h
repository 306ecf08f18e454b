// Metric names of a `coding` case (evals/suites/coding writes them, reports/render/views reads them).
// Chunks hold counts; the summary case also pass_at_<k>[_plus] with _ci_lo and _ci_hi.
#pragma once

namespace v4b::schema::coding {
inline constexpr const char* kProblems = "problems";
inline constexpr const char* kSamples = "samples";
inline constexpr const char* kPassed = "passed";
inline constexpr const char* kPassedPlus = "passed_plus";
inline constexpr const char* kStatusPrefix = "status_";  // status_pass, status_fail, status_timeout, ...
inline constexpr const char* kGenSeconds = "gen_s";
inline constexpr const char* kGradeSeconds = "grade_s";
inline constexpr const char* kPassAtPrefix = "pass_at_";
inline constexpr const char* kCiLoSuffix = "_ci_lo";
inline constexpr const char* kCiHiSuffix = "_ci_hi";
}  // namespace v4b::schema::coding
