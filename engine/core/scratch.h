// Buffers allocated without zeroing, for scratch that is written in full before it is read.
#pragma once

#include <memory>
#include <utility>
#include <vector>

namespace v4b {

// Default-initialises instead of value-initialising, so resize() leaves new elements as they come.
template <class T>
struct NoInitAllocator : std::allocator<T> {
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

// Zeroing the large per-pass buffers of a long prefill first cost a few percent in memset alone.
template <class T>
using Scratch = std::vector<T, NoInitAllocator<T>>;

}  // namespace v4b
