// The --base-url of an OpenAI-compatible endpoint, as the http client (http_client.h) uses it:
// "http://host:8000/v1/" -> origin "http://host:8000", prefix "/v1".
#pragma once

#include <string>

namespace v4b::evals {

struct BaseUrl {
  std::string origin;  // scheme://host[:port], what httplib::Client takes
  std::string prefix;  // path before the endpoint, without a trailing slash ("" or "/v1")
  bool operator==(const BaseUrl&) const = default;
};

// Throws UsageError unless `url` is http(s)://host[:port][/path] with no spaces.
BaseUrl parse_base_url(const std::string& url);

}  // namespace v4b::evals
