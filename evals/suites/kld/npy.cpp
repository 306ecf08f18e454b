#include "evals/suites/kld/npy.h"

#include <cstring>
#include <filesystem>
#include <regex>

#include <fmt/format.h>

#include "common/errors.h"

namespace v4b::evals {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kHeaderTotal = 128;  // magic + version + length + dict, a multiple of 64 as the format asks

std::string header_dict(int64_t rows, int64_t cols) {
  return fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", rows, cols);
}

}  // namespace

NpyWriter::NpyWriter(const std::string& path, int64_t cols) : path_(path), cols_(cols) {
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw UsageError(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  write_header();
}

NpyWriter::~NpyWriter() {
  if (f_) std::fclose(f_);
}

void NpyWriter::write_header() {
  std::string dict = header_dict(rows_, cols_);
  const size_t fixed = kMagicLen + 2 + 2;
  dict.resize(kHeaderTotal - fixed - 1, ' ');
  dict += '\n';
  const uint16_t len = static_cast<uint16_t>(dict.size());
  const uint8_t version[2] = {1, 0};
  std::fseek(f_, 0, SEEK_SET);
  std::fwrite(kMagic, 1, kMagicLen, f_);
  std::fwrite(version, 1, 2, f_);
  const uint8_t le[2] = {static_cast<uint8_t>(len & 0xff), static_cast<uint8_t>(len >> 8)};
  std::fwrite(le, 1, 2, f_);
  std::fwrite(dict.data(), 1, dict.size(), f_);
}

void NpyWriter::append(std::span<const float> rows) {
  if (rows.size() % cols_) throw std::logic_error("NpyWriter::append: not a whole number of rows");
  if (std::fwrite(rows.data(), sizeof(float), rows.size(), f_) != rows.size())
    throw UsageError(fmt::format("writing {}: {}", path_, std::strerror(errno)));
  rows_ += static_cast<int64_t>(rows.size()) / cols_;
}

void NpyWriter::close() {
  if (!f_) return;
  write_header();
  const bool ok = std::fflush(f_) == 0;
  std::fclose(f_);
  f_ = nullptr;
  if (!ok) throw UsageError(fmt::format("writing {}: {}", path_, std::strerror(errno)));
}

NpyReader::NpyReader(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) throw UsageError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  auto bad = [&](const std::string& why) { return UsageError(fmt::format("{} is not a usable logits .npy: {}", path, why)); };
  uint8_t pre[kMagicLen + 2];
  if (std::fread(pre, 1, sizeof pre, f_) != sizeof pre || std::memcmp(pre, kMagic, kMagicLen) != 0) throw bad("no NumPy magic");
  const int major = pre[kMagicLen];
  if (major < 1 || major > 3) throw bad(fmt::format("unknown format version {}", major));
  uint8_t lenb[4] = {};
  const size_t len_size = major == 1 ? 2 : 4;
  if (std::fread(lenb, 1, len_size, f_) != len_size) throw bad("truncated header");
  const size_t len = lenb[0] | (lenb[1] << 8) | (size_t(lenb[2]) << 16) | (size_t(lenb[3]) << 24);
  if (len > (1 << 20)) throw bad("header too long");
  std::string dict(len, '\0');
  if (std::fread(dict.data(), 1, len, f_) != len) throw bad("truncated header");

  std::smatch m;
  if (!std::regex_search(dict, m, std::regex(R"('descr'\s*:\s*'([^']*)')"))) throw bad("no descr");
  if (m[1] != "<f4") throw bad(fmt::format("dtype {} (expected float32, '<f4')", m[1].str()));
  if (std::regex_search(dict, std::regex(R"('fortran_order'\s*:\s*True)"))) throw bad("Fortran order (expected C order)");
  if (!std::regex_search(dict, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) throw bad("no shape");
  std::smatch dims;
  const std::string shape = m[1];
  if (!std::regex_match(shape, dims, std::regex(R"(\s*(\d+)\s*,\s*(\d+)\s*,?\s*)")))
    throw bad(fmt::format("shape ({}) is not 2-D [positions, vocab]", shape));
  rows_ = std::stoll(dims[1]);
  cols_ = std::stoll(dims[2]);
  if (cols_ <= 0) throw bad("zero-width rows");
  const auto data_start = static_cast<uintmax_t>(kMagicLen + 2 + len_size + len);
  const uintmax_t expect = data_start + static_cast<uintmax_t>(rows_) * cols_ * 4;
  const uintmax_t size = std::filesystem::file_size(path);
  if (size != expect) throw bad(fmt::format("{} bytes, but shape ({}, {}) needs {}", size, rows_, cols_, expect));
}

NpyReader::~NpyReader() {
  if (f_) std::fclose(f_);
}

void NpyReader::read(std::span<float> out) {
  const int64_t n = static_cast<int64_t>(out.size()) / cols_;
  if (next_ + n > rows_) throw UsageError(fmt::format("{} has {} rows; row {} was asked for", path_, rows_, next_ + n - 1));
  if (std::fread(out.data(), sizeof(float), out.size(), f_) != out.size()) throw UsageError(fmt::format("reading {} failed", path_));
  next_ += n;
}

}  // namespace v4b::evals
