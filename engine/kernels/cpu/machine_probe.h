// Measures this machine's ceilings — read bandwidth from cache-resident and DRAM-sized buffers and
// fp32 FMA throughput — so every speed can be reported as a percentage of what the hardware does.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/kernels/cpu/cpu_features.h"

namespace v4b {

class ThreadPool;

struct MachineCeilings {
  double read_gbps_dram = 0;   // GB/s (1e9 bytes), all pool threads reading a buffer far beyond L3
  double read_gbps_cache = 0;  // GB/s, each thread re-reading a buffer that fits its L2
  double fma_gflops = 0;       // GFLOP/s (2 per FMA), all pool threads, widest vectors of `isa`
  int threads = 0;
  std::string isa;
  std::string measured_at;  // ISO-8601 UTC

  nlohmann::json to_json() const;
  static MachineCeilings from_json(const nlohmann::json& j);
};

// Takes about two seconds. dram_bytes: size of the DRAM buffer (default 512 MiB).
MachineCeilings probe_machine(ThreadPool& pool, CpuIsa isa = CpuIsa::kAuto, int64_t dram_bytes = int64_t{512} << 20);

// The last probe of this host, kept in the cache file named by host.h's ceilings_cache_path().
std::optional<MachineCeilings> load_ceilings();
void save_ceilings(const MachineCeilings& c);
// Cached ceilings, probing (and caching) first when there are none.
MachineCeilings cached_or_probe(ThreadPool& pool);

}  // namespace v4b
