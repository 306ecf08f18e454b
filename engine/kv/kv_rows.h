// Rows of one KV kind held in their storage format (spec §3): BF16 (reference) or the production
// FP8 / FP4 layouts. Rows are encoded on write and decoded to FP32 on read, so the bytes a session
// reports are the bytes it holds: rows x row_bytes(), the figures of engine/models/cost_model.h.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/models/cost_model.h"

namespace v4b {

enum class RowCodec {
  kV4Kv,        // V4 window / compressed KV [D]: fp8 = E4M3 nope dims + UE8M0 per 64 + pad + BF16 rope dims
  kFp4Key,      // V4 indexer key [D_I]: fp8 = packed E2M1 + UE8M0 per 32
  kMlaLatent,   // V3 latent + rope key [c + R]: fp8 = E4M3 latent + FP32 scale per 128 + BF16 rope
  kFp8Key,      // V3.2 indexer key [D_I]: fp8 = E4M3 + one FP32 scale
  kPlain,       // GQA K/V [n]: fp8 = E4M3 with unit scale (vLLM's default without calibration)
};

struct RowFormat {
  RowCodec codec = RowCodec::kPlain;
  KvFormat format = KvFormat::kBf16;
  int64_t dims = 0;       // floats per row
  int64_t rope_dims = 0;  // trailing BF16 dims (kV4Kv, kMlaLatent)
  int64_t row_bytes() const;
};

class KvRows {
 public:
  KvRows() = default;
  explicit KvRows(RowFormat f) : f_(f), row_bytes_(f.row_bytes()) {}

  const RowFormat& format() const { return f_; }
  int64_t size() const { return rows_; }
  int64_t bytes() const { return rows_ * row_bytes_; }

  void append(const float* row);
  void set(int64_t i, const float* row);  // i < size()
  void get(int64_t i, float* out) const;
  // Row i rounded to BF16 bits (exact where its values are, as V4's are): the stored bits
  // themselves in the bf16 format, with no float round trip.
  void get_bf16(int64_t i, uint16_t* out) const;
  void clear() { data_.clear(), rows_ = 0; }

 private:
  RowFormat f_;
  int64_t row_bytes_ = 0, rows_ = 0;
  std::vector<uint8_t> data_;
};

void encode_row(const RowFormat& f, const float* row, uint8_t* out);
void decode_row(const RowFormat& f, const uint8_t* in, float* row);

}  // namespace v4b
