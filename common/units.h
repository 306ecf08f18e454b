// Parsing of human sizes: "4096", "4k" (= 4096), "1m" (= 1048576), "2g".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace v4b {

// Parses one size; throws UsageError naming `what` for anything but a positive integer with an
// optional k/m/g suffix (binary multiples, case-insensitive).
int64_t parse_size(std::string_view text, std::string_view what = "size");
// Parses a comma-separated list of sizes.
std::vector<int64_t> parse_size_list(std::string_view text, std::string_view what = "size");
// Splits a comma-separated list of names; throws UsageError for an empty entry.
std::vector<std::string> parse_name_list(std::string_view text, std::string_view what);
// Formats a size back with the largest exact suffix: 4096 -> "4k", 1048576 -> "1m", 1000 -> "1000".
std::string format_size(int64_t n);

}  // namespace v4b
