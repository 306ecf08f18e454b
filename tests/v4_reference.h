// An independent, plainly written double-precision DeepSeek-V4 forward pass, straight from
// ../shared/spec/deepseek-v4.md §2, for testing the engine. It shares nothing with engine/models:
// it reads the checkpoint itself, keeps every token's raw projections and recomputes compressed
// rows by pooling over that history (the engine keeps incremental partial-window state instead).
#pragma once

#include <string>
#include <vector>

namespace v4b::test {

// Logits [tokens.size()][vocab] after every token, in "native" (as designed) or "dense" attention.
std::vector<std::vector<double>> v4_reference_logits(const std::string& checkpoint_dir, const std::vector<int>& tokens, bool dense);

}  // namespace v4b::test
