#include "evals/backends/engine_runs.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "engine/models/presets.h"
#include "common/hashing.h"

namespace v4b::evals {

EngineBackend& EngineRuns::backend(const std::string& model) {
  auto& b = backends_[model];
  if (!b) {
    BackendSpec spec;
    spec.model = model;
    spec.seed = seed_;
    b = std::make_unique<EngineBackend>(spec);
  }
  return *b;
}

const ModelConfig& EngineRuns::config(const std::string& model) {
  auto it = configs_.find(model);
  if (it == configs_.end()) it = configs_.emplace(model, resolve_model(model)).first;
  return it->second;
}

int32_t EngineRuns::token_at(const std::string& model, int64_t p) {
  const uint64_t z = splitmix64_mix(seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(p) + 1);
  return static_cast<int32_t>(z % static_cast<uint64_t>(config(model).vocab));
}

Session& EngineRuns::at_depth(const std::string& model, const SessionOptions& o, int64_t depth, int64_t* filled) {
  auto& session = sessions_[{model, static_cast<int>(o.attention), static_cast<int>(o.kv_format), static_cast<int>(o.numerics)}];
  if (!session) session = backend(model).new_session({o.attention, o.kv_format, o.numerics}, /*bf16_activations=*/true);
  if (session->position() > depth) session->reset();
  if (filled) *filled = depth - session->position();
  // Bounded activation memory at any depth; 2048 rather than 512 gives each expert about 512 rows
  // per GEMM and decodes the CSA rows a chunk needs once per 2048 queries (128k fp8: 374 s vs 386-399).
  constexpr int64_t kChunk = 2048;
  // A long fill says how far it is on a terminal, every 10 s (the runner's lines come per case).
  const bool tell = isatty(STDERR_FILENO) != 0;
  const auto start = Clock::now();
  auto last_told = start;
  const int64_t start_pos = session->position();
  std::vector<int32_t> ids;
  while (session->position() < depth) {
    const int64_t from = session->position(), n = std::min(kChunk, depth - from);
    ids.resize(n);
    for (int64_t i = 0; i < n; ++i) ids[i] = token_at(model, from + i);
    session->prefill(ids);
    if (const auto now = Clock::now(); tell && now - last_told > std::chrono::seconds(10)) {
      last_told = now;
      const double s = std::chrono::duration<double>(now - start).count();
      fmt::print(stderr, "  filling {} to {} tokens: {} done, {:.0f} tok/s\n", model, depth, session->position(),
                 (session->position() - start_pos) / s);
    }
  }
  return *session;
}

}  // namespace v4b::evals
