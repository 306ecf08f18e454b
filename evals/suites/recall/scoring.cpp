#include "evals/suites/recall/scoring.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace v4b::evals::recall {

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
bool contains(const std::string& haystack_lower, const std::string& ref) { return haystack_lower.find(lower(ref)) != std::string::npos; }
}  // namespace

std::string normalize_prediction(std::string_view p) {
  // Python's str.strip() removes whitespace (ASCII here) at both ends.
  while (!p.empty() && std::isspace(static_cast<unsigned char>(p.front()))) p.remove_prefix(1);
  while (!p.empty() && std::isspace(static_cast<unsigned char>(p.back()))) p.remove_suffix(1);
  std::string out(p);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20) c = '\n';
  return out;
}

double string_match_all(std::string_view prediction, const std::vector<std::string>& refs) {
  if (refs.empty()) return 0;
  const std::string p = lower(normalize_prediction(prediction));
  double hits = 0;
  for (const auto& r : refs) hits += contains(p, r);
  return hits / static_cast<double>(refs.size());
}

double string_match_part(std::string_view prediction, const std::vector<std::string>& refs) {
  const std::string p = lower(normalize_prediction(prediction));
  for (const auto& r : refs)
    if (contains(p, r)) return 1;
  return 0;
}

double match_score(MatchMetric m, std::string_view prediction, const std::vector<std::string>& refs) {
  return m == MatchMetric::kAll ? string_match_all(prediction, refs) : string_match_part(prediction, refs);
}

int64_t block_distance(int64_t p, int64_t m) {
  if (m <= 0) return 0;
  const int64_t r = p % m;
  return std::min(r, m - r);
}

}  // namespace v4b::evals::recall
