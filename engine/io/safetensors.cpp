#include "engine/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>
#include <unordered_set>

#include <fmt/format.h>

#include "common/errors.h"

namespace v4b {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Makes untrusted text safe for a one-line message: control bytes escaped, long text cut.
std::string printable(std::string_view s, size_t max_len = 120) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out;
}

std::string in_quotes(std::string_view s) {
  // Appending (rather than "'" + str) sidesteps a GCC 12 -Wrestrict false positive.
  std::string out(1, '\'');
  out.append(printable(s));
  out.push_back('\'');
  return out;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

[[noreturn]] void fail(const std::string& file, const std::string& problem) {
  throw UsageError(printable(file, 400) + ": " + problem);
}

// Parses a JSON value as a non-negative integer that fits int64 (shapes) / uint64 (offsets).
// Returns an empty string on success, else what is wrong with it.
std::string as_u64(const json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return {};
  }
  if (v.is_number_integer()) return fmt::format("is negative ({})", v.get<int64_t>());
  if (v.is_number_float()) return "is not an integer";
  return fmt::format("is a {}, not an integer", v.type_name());
}

// numel * elem_size with overflow detection.
bool checked_bytes(const std::vector<int64_t>& shape, size_t elem, uint64_t& out) {
  uint64_t n = elem;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  out = n;
  return true;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated at parse time: the byte count did not overflow
  return n;
}

// ---------------------------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, fmt::format("cannot open: {}", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, fmt::format("cannot stat: {}", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    fail(path, fmt::format("file is {} bytes, too short for the 8-byte header length", size_));
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) fail(path, fmt::format("cannot mmap: {}", std::strerror(map_err)));
  base_ = static_cast<const uint8_t*>(p);

  try {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | base_[i];  // little-endian regardless of host
    if (n < 2) fail(path, fmt::format("header length {} is too small for a JSON object", n));
    if (n > kSafetensorsMaxHeader)
      fail(path, fmt::format("header length {} exceeds the {}-byte limit", n, kSafetensorsMaxHeader));
    if (n > size_ - 8)
      fail(path, fmt::format("header length {} runs past the end of the file ({} bytes)", n, size_));
    header_size_ = n;
    const uint64_t data_start = 8 + n;
    const uint64_t data_size = size_ - data_start;

    // Duplicate top-level keys would silently shadow each other in the DOM; catch them while parsing.
    std::unordered_set<std::string> seen;
    std::string duplicate;
    const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::key && depth == 1 && duplicate.empty()) {
        auto key = parsed.get<std::string>();
        if (!seen.insert(key).second) duplicate = std::move(key);
      }
      return true;
    };
    const auto* hdr = reinterpret_cast<const char*>(base_ + 8);
    // nlohmann's lexer takes a NUL byte as end of input, which would accept "{}\0garbage"; a raw NUL
    // is never valid JSON, so reject it up front.
    if (std::memchr(hdr, '\0', n) != nullptr) fail(path, "header is not valid JSON: it contains a NUL byte");
    json header;
    try {
      header = json::parse(hdr, hdr + n, on_event, /*allow_exceptions=*/true, /*ignore_comments=*/false);
    } catch (const json::exception& e) {
      fail(path, "header is not valid JSON: " + printable(e.what(), 200));
    }
    if (!header.is_object()) fail(path, fmt::format("header is a JSON {}, not an object", header.type_name()));
    if (!duplicate.empty()) fail(path, fmt::format("header has key {} more than once", in_quotes(duplicate)));

    tensors_.reserve(header.size());
    for (const auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        if (!value.is_object()) fail(path, "__metadata__ is not a JSON object");
        for (const auto& [k, v] : value.items()) {
          if (!v.is_string()) fail(path, fmt::format("__metadata__ value for {} is not a string", in_quotes(k)));
          metadata_[k] = v.get<std::string>();
        }
        continue;
      }
      const std::string tname = "tensor " + in_quotes(name);
      if (!value.is_object()) fail(path, tname + " is not a JSON object");

      TensorInfo t;
      t.name = name;
      const auto dt = value.find("dtype");
      if (dt == value.end() || !dt->is_string()) fail(path, tname + " has no string \"dtype\"");
      const auto parsed = parse_dtype(dt->get_ref<const std::string&>());
      if (!parsed) fail(path, fmt::format("{} has unknown dtype {}", tname, in_quotes(dt->get_ref<const std::string&>())));
      t.dtype = *parsed;

      const auto sh = value.find("shape");
      if (sh == value.end() || !sh->is_array()) fail(path, tname + " has no \"shape\" array");
      for (size_t i = 0; i < sh->size(); ++i) {
        uint64_t d = 0;
        if (auto why = as_u64((*sh)[i], d); !why.empty()) fail(path, fmt::format("{} shape[{}] {}", tname, i, why));
        if (d > static_cast<uint64_t>(INT64_MAX)) fail(path, fmt::format("{} shape[{}] = {} is too large", tname, i, d));
        t.shape.push_back(static_cast<int64_t>(d));
      }

      const auto off = value.find("data_offsets");
      if (off == value.end() || !off->is_array() || off->size() != 2)
        fail(path, tname + " has no \"data_offsets\" [begin, end] pair");
      uint64_t begin = 0, end = 0;
      if (auto why = as_u64((*off)[0], begin); !why.empty()) fail(path, tname + " data_offsets begin " + why);
      if (auto why = as_u64((*off)[1], end); !why.empty()) fail(path, tname + " data_offsets end " + why);
      if (begin > end) fail(path, fmt::format("{} data_offsets [{}, {}) end before they begin", tname, begin, end));
      if (end > data_size)
        fail(path, fmt::format("{} data_offsets [{}, {}) run past the data region ({} bytes)", tname, begin, end, data_size));

      uint64_t expect = 0;
      if (!checked_bytes(t.shape, dtype_size(t.dtype), expect))
        fail(path, fmt::format("{} shape {} x {} overflows 64 bits", tname, shape_str(t.shape), dtype_name(t.dtype)));
      if (expect != end - begin)
        fail(path, fmt::format("{} data_offsets [{}, {}) do not match shape {} x {} = {} bytes", tname, begin, end,
                               shape_str(t.shape), dtype_name(t.dtype), expect));
      t.offset = data_start + begin;
      t.nbytes = end - begin;
      t.data = base_ + t.offset;
      tensors_.push_back(std::move(t));
    }

    // Sorted by start, any tensor beginning before the furthest end so far overlaps it. Empty
    // tensors own no bytes and cannot overlap anything.
    std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
      return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
    });
    const TensorInfo* furthest = nullptr;
    for (const auto& t : tensors_) {
      if (t.nbytes == 0) continue;
      if (furthest && t.offset < furthest->offset + furthest->nbytes)
        fail(path, fmt::format("tensors {} [{}, {}) and {} [{}, {}) overlap", in_quotes(furthest->name),
                               furthest->offset - data_start, furthest->offset + furthest->nbytes - data_start,
                               in_quotes(t.name), t.offset - data_start, t.offset + t.nbytes - data_start));
      if (!furthest || t.offset + t.nbytes > furthest->offset + furthest->nbytes) furthest = &t;
    }
    by_name_.reserve(tensors_.size());
    for (size_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, i);
  } catch (...) {
    unmap();
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)),
      base_(std::exchange(o.base_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      header_size_(o.header_size_),
      tensors_(std::move(o.tensors_)),
      by_name_(std::move(o.by_name_)),
      metadata_(std::move(o.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
  if (this != &o) {
    unmap();
    path_ = std::move(o.path_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    header_size_ = o.header_size_;
    tensors_ = std::move(o.tensors_);
    by_name_ = std::move(o.by_name_);
    metadata_ = std::move(o.metadata_);
  }
  return *this;
}

void SafetensorsFile::unmap() noexcept {
  if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
  base_ = nullptr;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(std::string_view name) const {
  if (const auto* t = find(name)) return *t;
  fail(path_, "no tensor " + in_quotes(name));
}

// ---------------------------------------------------------------------------------------------
// CheckpointReader

namespace {

constexpr uint64_t kMaxIndexBytes = 256ull << 20;

json read_json_file(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot read: " + ec.message());
  if (size > kMaxIndexBytes) fail(path, fmt::format("index file is {} bytes, over the {}-byte limit", size, kMaxIndexBytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open");
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (in.gcount() != static_cast<std::streamsize>(size)) fail(path, "short read");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(path, "not valid JSON: " + printable(e.what(), 200));
  }
}

// Shard names come from an untrusted file: keep them inside the checkpoint directory.
bool safe_relative(const std::string& name) {
  if (name.empty() || name.find('\0') != std::string::npos) return false;
  const fs::path p(name);
  if (p.is_absolute() || p.has_root_name()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

}  // namespace

CheckpointReader::CheckpointReader(const std::string& path) : path_(path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) fail(path, "no such file or directory");

  std::string index_path;
  if (fs::is_directory(status)) {
    const fs::path idx = fs::path(path) / "model.safetensors.index.json";
    if (fs::exists(idx, ec)) {
      index_path = idx.string();
    } else {
      std::vector<std::string> names;
      for (const auto& e : fs::directory_iterator(path, ec)) {
        const auto fname = e.path().filename().string();
        std::error_code ec_file;  // a dangling entry is skipped, not an error for the listing
        if (e.path().extension() == ".safetensors" && fname[0] != '.' && e.is_regular_file(ec_file)) names.push_back(fname);
      }
      if (ec) fail(path, "cannot list directory: " + ec.message());
      if (names.empty()) fail(path, "directory has no *.safetensors files and no model.safetensors.index.json");
      std::sort(names.begin(), names.end());
      for (const auto& n : names) add_shard((fs::path(path) / n).string(), n);
    }
  } else if (path.size() >= 5 && path.ends_with(".json")) {
    index_path = path;
  } else {
    add_shard(path, fs::path(path).filename().string());
  }

  if (!index_path.empty()) {
    const json index = read_json_file(index_path);
    if (!index.is_object()) fail(index_path, fmt::format("index is a JSON {}, not an object", index.type_name()));
    if (index.contains("metadata")) {
      if (!index["metadata"].is_object()) fail(index_path, "\"metadata\" is not a JSON object");
      index_metadata_ = index["metadata"];
    }
    const auto wm = index.find("weight_map");
    if (wm == index.end() || !wm->is_object()) fail(index_path, "no \"weight_map\" object");
    std::set<std::string> files;
    for (const auto& [tensor, shard] : wm->items()) {
      if (!shard.is_string()) fail(index_path, fmt::format("weight_map entry for {} is not a string", in_quotes(tensor)));
      const auto& s = shard.get_ref<const std::string&>();
      if (!safe_relative(s)) fail(index_path, fmt::format("weight_map entry for {} names shard {}, which is not a relative path inside the checkpoint", in_quotes(tensor), in_quotes(s)));
      files.insert(s);
    }
    if (files.empty()) fail(index_path, "weight_map is empty");
    const fs::path dir = fs::path(index_path).parent_path();
    for (const auto& f : files) add_shard((dir / f).string(), f);

    std::unordered_map<std::string, size_t> shard_index;
    for (size_t i = 0; i < shard_names_.size(); ++i) shard_index.emplace(shard_names_[i], i);
    for (const auto& [tensor, shard] : wm->items()) {
      const size_t si = shard_index.at(shard.get<std::string>());
      const TensorInfo* t = shards_[si].find(tensor);
      if (!t)
        fail(index_path, fmt::format("weight_map puts tensor {} in {}, but that shard has no such tensor", in_quotes(tensor),
                                     in_quotes(shard_names_[si])));
      by_name_.emplace(tensor, Entry{t, si});
    }
  } else {
    for (size_t si = 0; si < shards_.size(); ++si) {
      for (const auto& t : shards_[si].tensors()) {
        const auto [it, inserted] = by_name_.emplace(t.name, Entry{&t, si});
        if (!inserted)
          fail(path, fmt::format("tensor {} appears in both {} and {}", in_quotes(t.name), in_quotes(shard_names_[it->second.shard]),
                                 in_quotes(shard_names_[si])));
      }
    }
  }

  sorted_.reserve(by_name_.size());
  for (const auto& [name, e] : by_name_) sorted_.push_back(e.info);
  std::sort(sorted_.begin(), sorted_.end(), [](const TensorInfo* a, const TensorInfo* b) { return a->name < b->name; });
}

void CheckpointReader::add_shard(const std::string& file, const std::string& name) {
  shards_.emplace_back(file);
  shard_names_.push_back(name);
}

const TensorInfo* CheckpointReader::find(std::string_view name) const {
  const auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : it->second.info;
}

const TensorInfo& CheckpointReader::at(std::string_view name) const {
  if (const auto* t = find(name)) return *t;
  fail(path_, "no tensor " + in_quotes(name));
}

size_t CheckpointReader::shard_of(std::string_view name) const {
  const auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) fail(path_, "no tensor " + in_quotes(name));
  return it->second.shard;
}

// ---------------------------------------------------------------------------------------------
// Writing

namespace {

// Writes the chunks to a fresh temporary next to `path`, syncs it, then renames it over `path`, so
// readers see either the old file or the complete new one.
void write_file_atomic(const std::string& path, const std::vector<std::span<const uint8_t>>& chunks) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = fmt::format("{}.tmp-{}-{}", path, ::getpid(), counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, fmt::format("cannot create temporary file: {}", std::strerror(errno)));
  auto abandon = [&](const std::string& what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, fmt::format("{}: {}", what, std::strerror(err)));
  };
  for (const auto& c : chunks) {
    size_t done = 0;
    while (done < c.size()) {
      const ssize_t w = ::write(fd, c.data() + done, c.size() - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        abandon("write failed");
      }
      done += static_cast<size_t>(w);
    }
  }
  if (::fsync(fd) != 0) abandon("fsync failed");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path, fmt::format("close failed: {}", std::strerror(err)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path, fmt::format("cannot rename temporary file into place: {}", std::strerror(err)));
  }
}

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps __metadata__ first and tensors in data order, which makes files easy to read.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::unordered_set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const std::string tname = "tensor " + in_quotes(t.name);
    if (t.name.empty() || t.name == "__metadata__") fail(path, "cannot write a tensor named " + in_quotes(t.name));
    if (!names.insert(t.name).second) fail(path, tname + " given twice");
    for (int64_t d : t.shape)
      if (d < 0) fail(path, fmt::format("{} has negative shape {}", tname, shape_str(t.shape)));
    uint64_t expect = 0;
    if (!checked_bytes(t.shape, dtype_size(t.dtype), expect))
      fail(path, fmt::format("{} shape {} overflows 64 bits", tname, shape_str(t.shape)));
    if (expect != t.bytes.size())
      fail(path, fmt::format("{} has {} bytes but shape {} x {} needs {}", tname, t.bytes.size(), shape_str(t.shape),
                             dtype_name(t.dtype), expect));
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + expect}}};
    offset += expect;
  }
  std::string text = header.dump();
  text.append((8 - (text.size() % 8)) % 8, ' ');  // data region starts 8-byte aligned (8 + len)
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  std::vector<std::span<const uint8_t>> chunks{std::span<const uint8_t>(len, 8), as_bytes(text)};
  for (const auto& t : tensors) chunks.push_back(t.bytes);
  write_file_atomic(path, chunks);
}

void write_safetensors_index(const std::string& path, const std::map<std::string, std::string>& weight_map,
                             uint64_t total_size) {
  const json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  const std::string text = index.dump(2) + "\n";
  write_file_atomic(path, {as_bytes(text)});
}

}  // namespace v4b
