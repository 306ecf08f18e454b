// SplitMix64 (Steele, Lea, Flood 2014): the small counter-based generator every seeded choice in
// v4bench uses, written out so results agree across standard libraries.
#pragma once

#include <cstdint>

namespace v4b {

// The output mix: a bijection that scatters nearby inputs (a hash of one 64-bit value).
inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct SplitMix64 {
  uint64_t state = 0;
  uint64_t next() { return splitmix64_mix(state += 0x9E3779B97F4A7C15ull); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

}  // namespace v4b
