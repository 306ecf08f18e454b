#include "engine/models/weights_binder.h"

#include <fmt/format.h>

#include "common/errors.h"
#include "engine/models/tensor_inventory.h"

namespace v4b {

std::vector<std::string> checkpoint_problems(const ModelConfig& m, const CheckpointReader& ckpt, bool require_mtp) {
  const std::vector<TensorSpec> expected = expected_tensors(m, require_mtp);
  std::vector<std::string> problems;
  size_t found = 0;
  for (const TensorSpec& want : expected) {
    const TensorInfo* got = ckpt.find(want.name);
    if (!got) {
      problems.push_back("missing tensor " + want.name);
      continue;
    }
    ++found;
    std::string what;
    if (got->dtype != want.dtype) what = fmt::format("dtype {}, expected {}", dtype_name(got->dtype), dtype_name(want.dtype));
    if (got->shape != want.shape)
      what += fmt::format("{}shape {}, expected {}", what.empty() ? "" : "; ", shape_string(got->shape), shape_string(want.shape));
    if (!what.empty()) problems.push_back(want.name + ": " + what);
  }
  // Nothing at all matching usually means a checkpoint of another family (or naming convention):
  // say so first, since the list below will only show the first few missing names.
  if (found == 0 && !expected.empty() && ckpt.size() > 0)
    problems.insert(problems.begin(), fmt::format("none of the {} tensors a {} checkpoint holds is present (it has {} others, e.g. {}): "
                                                  "is this the checkpoint config.json describes?",
                                                  expected.size(), family_name(m.family), ckpt.size(), ckpt.tensors().front()->name));
  return problems;
}

std::string format_checkpoint_problems(const std::string& path, const std::vector<std::string>& problems) {
  std::string out = fmt::format("checkpoint {} does not match config ({} problem{}):", path, problems.size(),
                                problems.size() == 1 ? "" : "s");
  for (size_t i = 0; i < problems.size() && i < kMaxListedProblems; ++i) out += "\n  " + problems[i];
  if (problems.size() > kMaxListedProblems) out += fmt::format("\n  ... and {} more", problems.size() - kMaxListedProblems);
  return out;
}

void check_checkpoint(const ModelConfig& m, const CheckpointReader& ckpt, bool require_mtp) {
  const auto problems = checkpoint_problems(m, ckpt, require_mtp);
  if (!problems.empty()) throw UsageError(format_checkpoint_problems(ckpt.path(), problems));
}

}  // namespace v4b
