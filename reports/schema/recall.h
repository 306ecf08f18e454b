// Metric names of a `recall` case (evals/suites/recall writes them, reports/render/views reads them).
// Per attention mode: accuracy and its counts; the paired case (attention "native-dense") holds the
// native-minus-dense comparison.
#pragma once

namespace v4b::schema::recall {
inline constexpr const char* kPairedAttention = "native-dense";  // the attention label of a paired case

inline constexpr const char* kAccuracy = "accuracy";  // mean task score, %
inline constexpr const char* kNulls = "nulls";
inline constexpr const char* kNSamples = "n_samples";
inline constexpr const char* kPromptTokens = "prompt_tokens";
inline constexpr const char* kCompletionTokens = "completion_tokens";
inline constexpr const char* kSecondsPerSample = "s_per_sample";
inline constexpr const char* kNeedleToken = "needle_token";

inline constexpr const char* kAccuracyNative = "accuracy_native";
inline constexpr const char* kAccuracyDense = "accuracy_dense";
inline constexpr const char* kAccuracyDiff = "accuracy_diff";  // native minus dense, points
inline constexpr const char* kMcnemarB = "mcnemar_b";
inline constexpr const char* kMcnemarC = "mcnemar_c";
inline constexpr const char* kMcnemarP = "mcnemar_p";
inline constexpr const char* kKlNativeDense = "kl_native_dense";  // also kl_native_dense_<bin>
inline constexpr const char* kKlNativeDenseMax = "kl_native_dense_max";
inline constexpr const char* kTop1Agreement = "top1_agreement";  // also top1_agreement_<bin>
}  // namespace v4b::schema::recall
