#include "evals/backends/backend.h"

#include <fmt/format.h>

#include "common/errors.h"
#include "evals/backends/engine_backend.h"

namespace v4b::evals {

// The one place a backend kind is chosen: a new backend is a class beside these and a line here.
std::unique_ptr<Backend> make_backend(const BackendSpec& spec) {
  if (spec.kind == "engine") return std::make_unique<EngineBackend>(spec);
  if (spec.kind == "http") return make_http_backend(spec);
  throw UsageError(fmt::format("unknown --backend '{}': expected engine or http", spec.kind));
}

}  // namespace v4b::evals
