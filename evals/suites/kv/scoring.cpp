#include "evals/suites/kv/scoring.h"

#include <fmt/format.h>

namespace v4b::evals::kv {

std::string kv_mismatch(const KvBytes& measured, const KvBytes& analytic) {
  std::string out;
  for (int k = 0; k < kNumKvKinds; ++k) {
    const auto kind = static_cast<KvKind>(k);
    if (measured[kind] != analytic[kind])
      out += fmt::format("{}{} measured {} vs analytic {}", out.empty() ? "" : "; ", kv_kind_name(kind), measured[kind], analytic[kind]);
  }
  return out;
}

}  // namespace v4b::evals::kv
