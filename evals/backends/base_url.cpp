#include "evals/backends/base_url.h"

#include <regex>

#include <fmt/format.h>

#include "common/errors.h"

namespace v4b::evals {

BaseUrl parse_base_url(const std::string& url) {
  static const std::regex re(R"(^(https?://[^/\s]+)(/[^\s]*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, re))
    throw UsageError(fmt::format("--base-url '{}' is not an http(s)://host[:port][/path] URL", url));
  std::string prefix = m[2].str();
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return {m[1].str(), prefix};
}

}  // namespace v4b::evals
