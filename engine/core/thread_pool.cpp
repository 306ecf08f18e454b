#include "engine/core/thread_pool.h"

#include <chrono>
#include <cstdlib>

#if defined(__x86_64__)
#include <immintrin.h>
#define V4B_PAUSE() _mm_pause()
#else
#define V4B_PAUSE() ((void)0)
#endif

namespace v4b {

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks() {
  for (int64_t c; (c = next_chunk_.fetch_add(1, std::memory_order_relaxed)) < n_chunks_;) {
    const int64_t begin = c * grain_, end = std::min(n_, begin + grain_);
    try {
      (*fn_)(begin, end);
    } catch (...) {
      std::lock_guard lock(error_mu_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

namespace {

// Decode issues hundreds of short parallel steps per token with serial work between them: a worker
// that waits by spinning (pausing) for up to this long picks the next step up at once, where one
// asleep on the condition variable costs a futex wake-up, tens of microseconds in a VM (decode on
// v4-small: 100 us of spinning gave 88 tok/s, 1.4 ms 98).
constexpr auto kSpinTime = std::chrono::microseconds(1000);

// Spins until done() or kSpinTime has passed; returns done().
template <class Done>
bool spin_until(Done done) {
  const auto end = std::chrono::steady_clock::now() + kSpinTime;
  while (!done()) {
    for (int i = 0; i < 64; ++i) V4B_PAUSE();
    if (std::chrono::steady_clock::now() > end) return done();
  }
  return true;
}

}  // namespace

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  while (true) {
    spin_until([&] { return generation_.load(std::memory_order_acquire) != seen || stop_; });
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      ++busy_;
    }
    run_chunks();
    {
      std::lock_guard lock(mu_);
      if (--busy_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = (n + grain - 1) / grain;
  if (chunks == 1 || workers_.empty()) {
    for (int64_t b = 0; b < n; b += grain) fn(b, std::min(n, b + grain));
    return;
  }
  {
    std::lock_guard lock(mu_);
    fn_ = &fn;
    n_ = n;
    grain_ = grain;
    n_chunks_ = chunks;
    next_chunk_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  run_chunks();
  spin_until([&] { return busy_.load(std::memory_order_acquire) == 0; });
  {
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return busy_ == 0; });
    fn_ = nullptr;
  }
  if (error_) std::rethrow_exception(error_);
}

ThreadPool& default_pool() {
  static ThreadPool pool([] {
    const char* v = std::getenv("V4BENCH_THREADS");
    return v ? std::atoi(v) : 0;
  }());
  return pool;
}

}  // namespace v4b
