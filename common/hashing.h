// The two small non-cryptographic hashes v4bench uses, written out so results agree across
// standard libraries and machines: SplitMix64 (Steele, Lea, Flood 2014) for every seeded choice,
// and FNV-1a (64-bit) for strings and ids that name or seed something.
#pragma once

#include <cstdint>
#include <string_view>

namespace v4b {

// SplitMix64's output mix: a bijection that scatters nearby inputs (a hash of one 64-bit value).
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

inline constexpr uint64_t kFnv1aOffset = 1469598103934665603ull;
inline constexpr uint64_t kFnv1aPrime = 1099511628211ull;

// FNV-1a over bytes, continuing from `h` (start from kFnv1aOffset, or it xor a seed).
inline uint64_t fnv1a(std::string_view bytes, uint64_t h = kFnv1aOffset) {
  for (unsigned char c : bytes) h = (h ^ c) * kFnv1aPrime;
  return h;
}
// FNV-1a over the four bytes of `v`, least significant first (so the same on any endianness).
inline uint64_t fnv1a_u32(uint32_t v, uint64_t h) {
  for (int i = 0; i < 4; ++i) h = (h ^ ((v >> (8 * i)) & 0xFF)) * kFnv1aPrime;
  return h;
}

}  // namespace v4b
