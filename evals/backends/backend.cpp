#include "evals/backends/backend.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/errors.h"
#include "evals/backends/engine_backend.h"

namespace v4b::evals {

namespace {
const std::vector<std::string> kBackendKinds = {"engine", "http"};
}  // namespace

void require_backend_kind(const std::string& kind, const std::vector<std::string>& others) {
  std::vector<std::string> known = kBackendKinds;
  known.insert(known.end(), others.begin(), others.end());
  if (std::find(known.begin(), known.end(), kind) != known.end()) return;
  std::string list;
  for (size_t i = 0; i < known.size(); ++i) list += (i == 0 ? "" : i + 1 == known.size() ? " or " : ", ") + known[i];
  throw UsageError(fmt::format("unknown --backend '{}': expected {}", kind, list));
}

// The one place a backend kind is chosen: a new backend is a class beside these, a line here and
// its name in kBackendKinds.
std::unique_ptr<Backend> make_backend(const BackendSpec& spec) {
  require_backend_kind(spec.kind);
  if (spec.kind == "http") return make_http_backend(spec);
  return std::make_unique<EngineBackend>(spec);
}

}  // namespace v4b::evals
