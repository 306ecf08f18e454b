// NumPy .npy files of float32 logits, [positions, vocab], row-major: the format other tools read
// directly (numpy.load). Both ends stream rows, so neither holds more than a row block in memory.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace v4b::evals {

// Rows of logits to hold at once when streaming: about 32 MB of floats whatever the vocabulary.
inline int64_t logits_block_rows(int64_t vocab) {
  const int64_t rows = (int64_t{8} << 20) / vocab;
  return rows < 1 ? 1 : rows > 512 ? 512 : rows;
}

// Writes rows as they come; the shape in the header is fixed up by close() (the header is padded to
// a fixed size so the final row count always fits).
class NpyWriter {
 public:
  NpyWriter(const std::string& path, int64_t cols);  // throws UsageError when the file can't be created
  ~NpyWriter();
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;

  void append(std::span<const float> rows);  // a whole number of rows
  void close();                              // writes the final shape; throws on I/O errors
  int64_t rows() const { return rows_; }

 private:
  void write_header();
  std::string path_;
  std::FILE* f_ = nullptr;
  int64_t cols_ = 0, rows_ = 0;
};

// Reads a 2-D little-endian float32 C-order .npy a block of rows at a time. The constructor checks
// the header and that the file holds exactly rows x cols floats; every problem is a UsageError
// naming the file.
class NpyReader {
 public:
  explicit NpyReader(const std::string& path);
  ~NpyReader();
  NpyReader(const NpyReader&) = delete;
  NpyReader& operator=(const NpyReader&) = delete;

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // Reads the next out.size() / cols() rows.
  void read(std::span<float> out);

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  int64_t rows_ = 0, cols_ = 0, next_ = 0;
};

}  // namespace v4b::evals
