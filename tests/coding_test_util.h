// Shared by the coding suite's tests.
#pragma once

#include <string>

#include "evals/suites/coding/problems.h"

namespace v4b::test {

// The canonical solution with its entry point wrapped so that every value it returns changes: a
// bool flips, a number x becomes x + 1 + |x|, a string becomes None, a container gains an element,
// None becomes 1. Graded, it must fail everywhere an oracle checks return values.
inline std::string corrupted_solution(const evals::coding::Problem& p) {
  if (p.entry_point.empty()) return p.canonical + "\nprint('v4bench corrupted output')\n";  // stdin programs
  std::string target = p.entry_point;
  std::string wrap = "_v4b_original = " + target + "\ndef " + target + "(*args, **kwargs):\n" +
                     "    return _v4b_corrupt(_v4b_original(*args, **kwargs))\n";
  if (p.canonical.find("class Solution") != std::string::npos)  // LiveCodeBench call-based: a method
    wrap = "_v4b_original = Solution." + target + "\nSolution." + target +
           " = lambda self, *args, **kwargs: _v4b_corrupt(_v4b_original(self, *args, **kwargs))\n";
  return p.canonical + "\n\n" + R"PY(
def _v4b_corrupt(x):
    if isinstance(x, bool):
        return not x
    if isinstance(x, float) and (x != x or abs(x) == float('inf')):
        return 0.0 if x != x else -x
    if isinstance(x, (int, float, complex)):
        return x + 1 + abs(x)  # far from x, even under a relative tolerance (MBPP's math.isclose)
    if isinstance(x, str):
        return None
    if isinstance(x, list):
        return x + [object()]
    if isinstance(x, tuple):
        return x + (object(),)
    if isinstance(x, (set, frozenset)):
        return set(x) | {object()}
    if isinstance(x, dict):
        return {**x, object(): 1}
    if x is None:
        return 1
    return None
)PY" + wrap;
}

}  // namespace v4b::test
