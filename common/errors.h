// Error types shared by every room. A UsageError is the user's mistake (bad flag, bad file, bad
// config): the CLI prints its one-line message and exits with status 2.
#pragma once

#include <stdexcept>
#include <string>

namespace v4b {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace v4b
