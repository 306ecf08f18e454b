#include "engine/io/files.h"

#include <zlib.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "common/errors.h"

namespace v4b {

namespace fs = std::filesystem;

std::string read_file_bytes(const fs::path& path, std::string_view what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw UsageError(fmt::format("{} '{}' does not exist", what, path.string()));
  if (fs::is_directory(path, ec)) throw UsageError(fmt::format("{} '{}' is a directory", what, path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("cannot read {} '{}'", what, path.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw UsageError(fmt::format("cannot read {} '{}'", what, path.string()));
  return std::move(ss).str();
}

std::string gunzip(const std::string& data, const std::string& label) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw std::runtime_error("zlib: inflateInit2 failed");
  std::string out;
  out.resize(data.size() * 4 + 1024);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  int rc = Z_OK;
  size_t produced = 0;
  while (true) {
    if (produced == out.size()) out.resize(out.size() * 2);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(out.size() - produced);
    rc = inflate(&zs, Z_NO_FLUSH);
    produced = out.size() - zs.avail_out;
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // another gzip member follows
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;  // input ended inside the stream
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
  }
  const std::string msg = zs.msg != nullptr ? zs.msg : "";
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    if (rc == Z_BUF_ERROR || rc == Z_OK) throw UsageError(label + ": the gzip stream is truncated");
    throw UsageError(fmt::format("{}: the gzip stream is corrupt ({})", label, msg.empty() ? std::to_string(rc) : msg));
  }
  out.resize(produced);
  return out;
}

bool is_gzip(std::string_view data) {
  return data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1F && static_cast<unsigned char>(data[1]) == 0x8B;
}

}  // namespace v4b
