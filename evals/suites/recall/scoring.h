// Scoring of the recall suite: RULER's string_match_all / string_match_part (harness-anchors §3.1,
// NVIDIA's definitions: case-insensitive substring; "part" is any-reference, not lm-eval's fraction),
// the paired McNemar test and next-token divergences (native vs dense).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "evals/suites/recall/generators.h"

namespace v4b::evals::recall {

// (RULER's effective length, a statistic over cases, is reports/stats: effective_length.)

// RULER's post-processing: strip, then control characters [\x00-\x1f] become '\n'.
std::string normalize_prediction(std::string_view prediction);
// Per sample, in [0, 1]: fraction of references contained (all) or 1 if any is contained (part).
double string_match_all(std::string_view prediction, const std::vector<std::string>& refs);
double string_match_part(std::string_view prediction, const std::vector<std::string>& refs);
double match_score(MatchMetric m, std::string_view prediction, const std::vector<std::string>& refs);

// Distance of token offset p to the nearest multiple of m (a compression-block boundary).
int64_t block_distance(int64_t p, int64_t m);

}  // namespace v4b::evals::recall
