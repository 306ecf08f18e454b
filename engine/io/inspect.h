// Checkpoint summary for `v4bench inspect`: what tensors a checkpoint holds, without reading data.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace v4b {

class CheckpointReader;

// `path` is anything CheckpointReader accepts (a .safetensors file, an index JSON or a directory).
// Returns
//   {"path": str, "files": [shard names], "metadata": {...},
//    "tensors": [{"name", "dtype", "shape", "bytes", "file"}] (sorted by name),
//    "total_bytes": sum of tensor bytes, "n_tensors": count}.
// "metadata" is the index's "metadata" object (if any) plus every shard's __metadata__ entries;
// on a key clash the index wins, then the first shard. Throws UsageError on any invalid input.
nlohmann::json inspect_checkpoint(const std::string& path);
// The same for an already opened checkpoint ("path" is ckpt.path()).
nlohmann::json inspect_checkpoint(const CheckpointReader& ckpt);

}  // namespace v4b
