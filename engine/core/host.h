// What machine a result came from: recorded with every run so numbers can be compared honestly.
#pragma once

#include <nlohmann/json.hpp>

namespace v4b {

// CPU model, logical cores, ISA flags the kernels care about, memory, OS, compiler and build type,
// engine commit. Cheap: reads /proc and cpuid, measures nothing.
nlohmann::json host_context();

}  // namespace v4b
