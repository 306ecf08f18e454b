// Safetensors reading (memory-mapped, strictly validated), sharded checkpoints, and writing.
//
// Format: 8-byte little-endian header length N, N bytes of JSON object
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}},
// then the data region; offsets are relative to the start of the data region.
//
// Every problem with a file is reported as a v4b::UsageError whose message is one line naming the
// file and the problem; no input can make the reader touch memory outside the mapping.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/core/dtypes.h"

namespace v4b {

inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;  // same cap as the reference library

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // absolute byte offset of the data in its file
  uint64_t nbytes = 0;
  // Points into the read-only mapping; valid while the owning file/reader lives. Only 8 + N byte
  // aligned relative to the file start, so element loads should go through memcpy or byte access.
  const uint8_t* data = nullptr;

  int64_t numel() const;
  std::span<const uint8_t> bytes() const { return {data, static_cast<size_t>(nbytes)}; }
};

// One .safetensors file, mapped read-only. Move-only.
class SafetensorsFile {
 public:
  // Opens, maps and validates; throws UsageError.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return size_; }
  uint64_t header_size() const { return header_size_; }
  // Tensors in data-offset order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // The optional "__metadata__" map (empty if absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // nullptr if absent.
  const TensorInfo* find(std::string_view name) const;
  // Throws UsageError naming the file if absent.
  const TensorInfo& at(std::string_view name) const;

 private:
  void unmap() noexcept;

  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t header_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint of one or more shards. `path` may be:
//  * a *.safetensors file (one shard);
//  * an index JSON (e.g. model.safetensors.index.json) with a "weight_map" {tensor: shard file};
//  * a directory: its model.safetensors.index.json if present, else every *.safetensors in it.
// With an index, the tensors are exactly those of weight_map, each validated to exist in its
// shard. Without one, a tensor name appearing in two shards is an error.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& path);
  // Lookup tables point into the shards' tensor lists, which survive a move but not a copy.
  CheckpointReader(CheckpointReader&&) noexcept = default;
  CheckpointReader& operator=(CheckpointReader&&) noexcept = default;
  CheckpointReader(const CheckpointReader&) = delete;
  CheckpointReader& operator=(const CheckpointReader&) = delete;

  const std::string& path() const { return path_; }
  // Shard names as given by the index (or file names), in opening order.
  const std::vector<std::string>& shard_names() const { return shard_names_; }
  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  // The index JSON's "metadata" object (null without an index).
  const nlohmann::json& index_metadata() const { return index_metadata_; }
  // Tensors sorted by name.
  const std::vector<const TensorInfo*>& tensors() const { return sorted_; }
  size_t size() const { return sorted_.size(); }
  const TensorInfo* find(std::string_view name) const;
  const TensorInfo& at(std::string_view name) const;
  // Index into shards()/shard_names() of the shard holding `name`; throws UsageError if absent.
  size_t shard_of(std::string_view name) const;

 private:
  void add_shard(const std::string& file, const std::string& name);

  std::string path_;
  std::vector<std::string> shard_names_;
  std::vector<SafetensorsFile> shards_;
  nlohmann::json index_metadata_;
  struct Entry {
    const TensorInfo* info;
    size_t shard;
  };
  std::unordered_map<std::string, Entry> by_name_;
  std::vector<const TensorInfo*> sorted_;
};

// One tensor to write; `bytes` must stay alive for the call and hold numel * dtype_size bytes.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> bytes;
};

// Writes tensors in the given order, header padded with spaces so the data region starts on an
// 8-byte boundary. Atomic: writes a temporary file in the same directory, then renames it.
// Throws UsageError naming `path` on invalid input (duplicate/empty names, byte count mismatch) or
// I/O failure.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Writes a model.safetensors.index.json style file {"metadata": {"total_size": N}, "weight_map": {...}},
// atomically.
void write_safetensors_index(const std::string& path, const std::map<std::string, std::string>& weight_map,
                             uint64_t total_size);

}  // namespace v4b
