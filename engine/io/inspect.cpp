#include "engine/io/inspect.h"

#include "engine/io/safetensors.h"

namespace v4b {

nlohmann::json inspect_checkpoint(const std::string& path) { return inspect_checkpoint(CheckpointReader(path)); }

nlohmann::json inspect_checkpoint(const CheckpointReader& ckpt) {
  nlohmann::json metadata = nlohmann::json::object();
  if (ckpt.index_metadata().is_object()) metadata = ckpt.index_metadata();
  for (const auto& shard : ckpt.shards())
    for (const auto& [k, v] : shard.metadata())
      if (!metadata.contains(k)) metadata[k] = v;

  nlohmann::json tensors = nlohmann::json::array();
  uint64_t total = 0;
  for (const TensorInfo* t : ckpt.tensors()) {
    tensors.push_back({{"name", t->name},
                       {"dtype", dtype_name(t->dtype)},
                       {"shape", t->shape},
                       {"bytes", t->nbytes},
                       {"file", ckpt.shard_names()[ckpt.shard_of(t->name)]}});
    total += t->nbytes;
  }
  return {{"path", ckpt.path()},
          {"files", ckpt.shard_names()},
          {"metadata", std::move(metadata)},
          {"tensors", std::move(tensors)},
          {"total_bytes", total},
          {"n_tensors", ckpt.size()}};
}

}  // namespace v4b
