// Integer helpers for sizes and blocks.
#pragma once

#include <cstdint>

namespace v4b {

// a / b rounded up (a >= 0, b > 0): the blocks of b that cover a.
constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace v4b
