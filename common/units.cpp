#include "common/units.h"

#include <cctype>
#include <limits>

#include <fmt/format.h>

#include "common/errors.h"

namespace v4b {

int64_t parse_size(std::string_view text, std::string_view what) {
  auto fail = [&]() -> int64_t {
    throw UsageError(fmt::format("invalid {} '{}': expected a positive integer with an optional k/m/g suffix (e.g. 4096, 4k, 1m)",
                                 what, text));
  };
  if (text.empty()) return fail();
  int shift = 0;
  std::string_view digits = text;
  switch (std::tolower(static_cast<unsigned char>(text.back()))) {
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    default: break;
  }
  if (shift) digits.remove_suffix(1);
  if (digits.empty() || digits.size() > 18) return fail();
  int64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return fail();
    value = value * 10 + (c - '0');
  }
  if (value <= 0 || value > (std::numeric_limits<int64_t>::max() >> shift)) return fail();
  return value << shift;
}

std::vector<int64_t> parse_size_list(std::string_view text, std::string_view what) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    if (comma == start || (comma == std::string_view::npos && start == text.size()))
      throw UsageError(fmt::format("invalid {} list '{}': empty entry", what, text));
    out.push_back(parse_size(text.substr(start, comma == std::string_view::npos ? text.npos : comma - start), what));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<std::string> parse_name_list(std::string_view text, std::string_view what) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    if (item.empty()) throw UsageError(fmt::format("invalid {} list '{}': empty entry", what, text));
    out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string format_size(int64_t n) {
  if (n > 0 && n % (int64_t{1} << 30) == 0) return fmt::format("{}g", n >> 30);
  if (n > 0 && n % (int64_t{1} << 20) == 0) return fmt::format("{}m", n >> 20);
  if (n > 0 && n % (int64_t{1} << 10) == 0) return fmt::format("{}k", n >> 10);
  return fmt::format("{}", n);
}

}  // namespace v4b
