#include "engine/kv/kv_rows.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "engine/core/dtypes.h"
#include "engine/core/int_math.h"
#include "engine/core/qdq.h"

namespace v4b {

namespace {

void put_bf16(const float* x, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t b = float_to_bf16(x[i]).bits;
    std::memcpy(out + 2 * i, &b, 2);
  }
}

void get_bf16(const uint8_t* in, int64_t n, float* x) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t b;
    std::memcpy(&b, in + 2 * i, 2);
    x[i] = bf16_to_float(Bf16{b});
  }
}

float block_amax(const float* x, int64_t n) {
  float a = 0;
  for (int64_t i = 0; i < n; ++i) a = std::max(a, std::fabs(x[i]));
  return a;
}

}  // namespace

int64_t RowFormat::row_bytes() const {
  if (format == KvFormat::kBf16) return 2 * dims;
  switch (codec) {
    case RowCodec::kV4Kv: {
      const int64_t nope = dims - rope_dims;
      return (nope + ceil_div(nope, 64) + 1) / 2 * 2 + 2 * rope_dims;
    }
    case RowCodec::kFp4Key: return dims / 2 + ceil_div(dims, 32);
    case RowCodec::kMlaLatent: {
      const int64_t latent = dims - rope_dims;
      return latent + 4 * ceil_div(latent, 128) + 2 * rope_dims;
    }
    case RowCodec::kFp8Key: return dims + 4;
    case RowCodec::kPlain: return dims;
  }
  return 0;
}

void encode_row(const RowFormat& f, const float* x, uint8_t* out) {
  if (f.format == KvFormat::kBf16) return put_bf16(x, f.dims, out);
  switch (f.codec) {
    case RowCodec::kV4Kv: {
      // Power-of-two scale per 64 (as the KV QDQ): values that were QDQ'd round-trip exactly.
      const int64_t nope = f.dims - f.rope_dims, blocks = ceil_div(nope, 64);
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t lo = b * 64, hi = std::min(nope, lo + 64);
        const int e = e4m3_scale_exponent(block_amax(x + lo, hi - lo));
        out[nope + b] = ue8m0_from_exponent(e);
        for (int64_t i = lo; i < hi; ++i) out[i] = float_to_e4m3(std::ldexp(x[i], -e));
      }
      const int64_t rope_at = f.row_bytes() - 2 * f.rope_dims;
      std::fill(out + nope + blocks, out + rope_at, 0);
      return put_bf16(x + nope, f.rope_dims, out + rope_at);
    }
    case RowCodec::kFp4Key: {
      const int64_t blocks = f.dims / 32;
      for (int64_t b = 0; b < blocks; ++b) {
        const int e = e2m1_scale_exponent(block_amax(x + 32 * b, 32));
        out[f.dims / 2 + b] = ue8m0_from_exponent(e);
        for (int64_t i = 0; i < 32; i += 2) {
          const uint8_t lo = float_to_e2m1(std::ldexp(x[32 * b + i], -e)), hi = float_to_e2m1(std::ldexp(x[32 * b + i + 1], -e));
          out[16 * b + i / 2] = static_cast<uint8_t>(lo | (hi << 4));
        }
      }
      return;
    }
    case RowCodec::kMlaLatent: {
      // FlashMLA's layout: an FP32 scale amax / 448 per 128 latent dims.
      const int64_t latent = f.dims - f.rope_dims, blocks = ceil_div(latent, 128);
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t lo = b * 128, hi = std::min(latent, lo + 128);
        const float s = std::max(block_amax(x + lo, hi - lo), 1e-4f) / kE4m3Max;
        std::memcpy(out + latent + 4 * b, &s, 4);
        for (int64_t i = lo; i < hi; ++i) out[i] = float_to_e4m3(x[i] / s);
      }
      return put_bf16(x + latent, f.rope_dims, out + latent + 4 * blocks);
    }
    case RowCodec::kFp8Key: {
      const float s = std::max(block_amax(x, f.dims), 1e-4f) / kE4m3Max;
      for (int64_t i = 0; i < f.dims; ++i) out[i] = float_to_e4m3(x[i] / s);
      std::memcpy(out + f.dims, &s, 4);
      return;
    }
    case RowCodec::kPlain:
      for (int64_t i = 0; i < f.dims; ++i) out[i] = float_to_e4m3(x[i]);
      return;
  }
}

void decode_row(const RowFormat& f, const uint8_t* in, float* x) {
  if (f.format == KvFormat::kBf16) return get_bf16(in, f.dims, x);
  switch (f.codec) {
    case RowCodec::kV4Kv: {
      const int64_t nope = f.dims - f.rope_dims;
      for (int64_t b = 0; b * 64 < nope; ++b) {
        const float s = ue8m0_to_float(in[nope + b]);
        for (int64_t i = b * 64; i < std::min(nope, b * 64 + 64); ++i) x[i] = e4m3_to_float(in[i]) * s;
      }
      return get_bf16(in + f.row_bytes() - 2 * f.rope_dims, f.rope_dims, x + nope);
    }
    case RowCodec::kFp4Key: {
      // A byte holds two codes (low nibble first): one table lookup per byte, one scale per 32.
      static const auto pairs = [] {
        std::array<std::array<float, 2>, 256> t{};
        for (int b = 0; b < 256; ++b) t[b] = {e2m1_to_float(static_cast<uint8_t>(b & 0xF)), e2m1_to_float(static_cast<uint8_t>(b >> 4))};
        return t;
      }();
      for (int64_t b = 0; b < f.dims / 32; ++b) {
        const float s = ue8m0_to_float(in[f.dims / 2 + b]);
        for (int64_t j = 0; j < 16; ++j) {
          const auto& p = pairs[in[16 * b + j]];
          x[32 * b + 2 * j] = p[0] * s;
          x[32 * b + 2 * j + 1] = p[1] * s;
        }
      }
      return;
    }
    case RowCodec::kMlaLatent: {
      const int64_t latent = f.dims - f.rope_dims, blocks = ceil_div(latent, 128);
      for (int64_t i = 0; i < latent; ++i) {
        float s;
        std::memcpy(&s, in + latent + 4 * (i / 128), 4);
        x[i] = e4m3_to_float(in[i]) * s;
      }
      return get_bf16(in + latent + 4 * blocks, f.rope_dims, x + latent);
    }
    case RowCodec::kFp8Key: {
      float s;
      std::memcpy(&s, in + f.dims, 4);
      for (int64_t i = 0; i < f.dims; ++i) x[i] = e4m3_to_float(in[i]) * s;
      return;
    }
    case RowCodec::kPlain:
      for (int64_t i = 0; i < f.dims; ++i) x[i] = e4m3_to_float(in[i]);
      return;
  }
}

void KvRows::append(const float* row) {
  data_.resize((rows_ + 1) * row_bytes_);
  encode_row(f_, row, data_.data() + rows_ * row_bytes_);
  ++rows_;
}

void KvRows::set(int64_t i, const float* row) { encode_row(f_, row, data_.data() + i * row_bytes_); }

void KvRows::get(int64_t i, float* out) const { decode_row(f_, data_.data() + i * row_bytes_, out); }

void KvRows::get_bf16(int64_t i, uint16_t* out) const {
  const uint8_t* in = data_.data() + i * row_bytes_;
  if (f_.format == KvFormat::kBf16) {
    std::memcpy(out, in, 2 * f_.dims);
    return;
  }
  thread_local std::vector<float> row;
  row.resize(f_.dims);
  decode_row(f_, in, row.data());
  for (int64_t c = 0; c < f_.dims; ++c) out[c] = float_to_bf16(row[c]).bits;
}

}  // namespace v4b
