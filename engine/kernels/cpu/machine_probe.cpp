#include "engine/kernels/cpu/machine_probe.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "common/host.h"
#include "engine/core/thread_pool.h"
#include "engine/kernels/cpu/probe_kernels.h"

namespace v4b {

namespace {

const ProbeKernels& kernels_for(CpuIsa isa) {
  switch (resolve_cpu_isa(isa)) {
    case CpuIsa::kAvx512: return probe_kernels_avx512();
    case CpuIsa::kAvx2: return probe_kernels_avx2();
    default: return probe_kernels_generic();
  }
}

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Best of `reps` timings of one parallel step in which every thread does `work(thread)`.
template <class F>
double best_time(ThreadPool& pool, int reps, F work) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_s();
    pool.parallel_for(pool.size(), 1, [&](int64_t b, int64_t) { work(static_cast<int>(b)); });
    best = std::min(best, now_s() - t0);
  }
  return best;
}


volatile float g_sink;  // keeps the loops' results alive

}  // namespace

nlohmann::json MachineCeilings::to_json() const {
  return {{"read_gbps_dram", read_gbps_dram}, {"read_gbps_cache", read_gbps_cache}, {"fma_gflops", fma_gflops},
          {"threads", threads}, {"isa", isa}, {"measured_at", measured_at}};
}

MachineCeilings MachineCeilings::from_json(const nlohmann::json& j) {
  MachineCeilings c;
  c.read_gbps_dram = j.value("read_gbps_dram", 0.0);
  c.read_gbps_cache = j.value("read_gbps_cache", 0.0);
  c.fma_gflops = j.value("fma_gflops", 0.0);
  c.threads = j.value("threads", 0);
  c.isa = j.value("isa", "");
  c.measured_at = j.value("measured_at", "");
  return c;
}

MachineCeilings probe_machine(ThreadPool& pool, CpuIsa isa, int64_t dram_bytes) {
  const ProbeKernels& k = kernels_for(isa);
  const int threads = pool.size();
  MachineCeilings c;
  c.threads = threads;
  c.isa = std::string(cpu_isa_name(resolve_cpu_isa(isa)));
  c.measured_at = utc_now_iso();

  // DRAM: each thread streams its own slice, first touched by that thread.
  const int64_t per_thread = std::max<int64_t>(64, dram_bytes / 4 / threads / 64 * 64);
  std::unique_ptr<float[]> big(new float[per_thread * threads]);
  pool.parallel_for(threads, 1, [&](int64_t t, int64_t) {
    for (int64_t i = 0; i < per_thread; ++i) big[t * per_thread + i] = 1.0f;
  });
  double t = best_time(pool, 5, [&](int th) { g_sink = k.sum_floats(big.get() + th * per_thread, per_thread); });
  c.read_gbps_dram = 4.0 * per_thread * threads / t / 1e9;
  big.reset();

  // Cache: 256 KiB per thread, read many times.
  const int64_t small = (256 << 10) / 4, reps = 400;
  std::unique_ptr<float[]> buf(new float[small * threads]);
  std::fill(buf.get(), buf.get() + small * threads, 1.0f);
  t = best_time(pool, 5, [&](int th) {
    float s = 0;
    for (int64_t r = 0; r < reps; ++r) s += k.sum_floats(buf.get() + th * small, small);
    g_sink = s;
  });
  c.read_gbps_cache = 4.0 * small * reps * threads / t / 1e9;

  // FMA: 12 chains of 16 lanes per thread.
  const int64_t iters = 4'000'000;
  t = best_time(pool, 5, [&](int th) { g_sink = k.fma_chains(iters, 1.0f + th); });
  c.fma_gflops = 384.0 * iters * threads / t / 1e9;
  return c;
}

std::optional<MachineCeilings> load_ceilings() {
  std::ifstream in(ceilings_cache_path());
  if (!in) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return MachineCeilings::from_json(j);
}

void save_ceilings(const MachineCeilings& c) {
  const std::filesystem::path path = ceilings_cache_path();
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  const std::string tmp = path.string() + ".tmp";
  std::ofstream(tmp) << c.to_json().dump(2) << "\n";
  std::filesystem::rename(tmp, path, ec);
}

MachineCeilings cached_or_probe(ThreadPool& pool) {
  if (auto c = load_ceilings(); c && c->threads == pool.size()) return *c;
  MachineCeilings c = probe_machine(pool);
  // Only a probe on every core describes the machine for later runs; others are for this caller.
  if (pool.size() == static_cast<int>(std::thread::hardware_concurrency())) save_ceilings(c);
  return c;
}

}  // namespace v4b
