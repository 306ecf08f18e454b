// What machine a result came from: recorded with every run so numbers can be compared honestly.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace v4b {

// CPU model, logical cores, ISA flags the kernels care about, memory, OS, compiler and build type,
// engine commit. Cheap: reads /proc and cpuid, measures nothing.
// Includes "ceilings" (bandwidth, FMA peak) when `v4bench env --probe` has measured this host.
nlohmann::json host_context();

// The current UTC time as ISO 8601 to the second, "2026-11-28T18:00:00Z".
std::string utc_now_iso();

// Where this host's measured ceilings are cached: $V4BENCH_CACHE_DIR, else $XDG_CACHE_HOME/v4bench,
// else ~/.cache/v4bench; one file per host name.
std::string ceilings_cache_path();

}  // namespace v4b
