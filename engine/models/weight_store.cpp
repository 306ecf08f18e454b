#include "engine/models/weight_store.h"

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "common/errors.h"

namespace v4b {

WeightMatrix WeightStore::matrix(const std::string& name, const std::string& scale_name) const {
  const TensorInfo& t = ckpt_->at(name);
  if (t.shape.size() != 2) throw UsageError(fmt::format("tensor {} is not a matrix", name));
  WeightMatrix w;
  w.rows = t.shape[0];
  w.cols = t.shape[1];
  w.data = t.data;
  const TensorInfo* s = scale_name.empty() ? nullptr : ckpt_->find(scale_name);
  switch (t.dtype) {
    case DType::F32: w.layout = WeightLayout::kF32; break;
    case DType::BF16: w.layout = WeightLayout::kBf16; break;
    case DType::F8_E4M3:
      if (!s) throw UsageError(fmt::format("FP8 tensor {} has no scale tensor {}", name, scale_name));
      w.layout = s->dtype == DType::F32 ? WeightLayout::kFp8F32 : WeightLayout::kFp8Ue8m0;
      break;
    case DType::I8:
    case DType::U8:
      if (!s) throw UsageError(fmt::format("packed FP4 tensor {} has no scale tensor {}", name, scale_name));
      w.layout = WeightLayout::kMxfp4;
      w.cols *= 2;  // two E2M1 values per stored byte
      break;
    default: throw UsageError(fmt::format("tensor {}: dtype {} cannot be a weight matrix", name, dtype_name(t.dtype)));
  }
  if (s) w.scales = s->data;
  return w;
}

std::vector<float> WeightStore::floats(const std::string& name) const {
  const TensorInfo& t = ckpt_->at(name);
  std::vector<float> out(t.numel());
  switch (t.dtype) {
    case DType::F32: std::memcpy(out.data(), t.data, out.size() * 4); break;
    case DType::BF16:
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t b;
        std::memcpy(&b, t.data + 2 * i, 2);
        out[i] = bf16_to_float(Bf16{b});
      }
      break;
    case DType::F16:
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t b;
        std::memcpy(&b, t.data + 2 * i, 2);
        out[i] = f16_to_float(F16{b});
      }
      break;
    default: throw UsageError(fmt::format("tensor {}: expected BF16, F16 or F32, found {}", name, dtype_name(t.dtype)));
  }
  return out;
}

std::vector<int64_t> WeightStore::int64s(const std::string& name) const {
  const TensorInfo& t = ckpt_->at(name);
  if (t.dtype != DType::I64) throw UsageError(fmt::format("tensor {}: expected I64, found {}", name, dtype_name(t.dtype)));
  std::vector<int64_t> out(t.numel());
  std::memcpy(out.data(), t.data, out.size() * 8);
  return out;
}

WeightMatrix slice_rows(const WeightMatrix& w, int64_t r0, int64_t n) {
  if (r0 < 0 || n <= 0 || r0 + n > w.rows) throw std::invalid_argument("slice_rows: rows out of range");
  WeightMatrix s = w;
  s.rows = n;
  const auto* d = static_cast<const uint8_t*>(w.data);
  const auto* sc = static_cast<const uint8_t*>(w.scales);
  switch (w.layout) {
    case WeightLayout::kF32: s.data = d + r0 * w.cols * 4; break;
    case WeightLayout::kBf16: s.data = d + r0 * w.cols * 2; break;
    case WeightLayout::kFp8Ue8m0:
    case WeightLayout::kFp8F32: {
      if (r0 % 128) throw std::invalid_argument("slice_rows: FP8 block rows must start on a 128-row boundary");
      s.data = d + r0 * w.cols;
      const int64_t col_blocks = (w.cols + 127) / 128;
      s.scales = sc + (r0 / 128) * col_blocks * (w.layout == WeightLayout::kFp8F32 ? 4 : 1);
      break;
    }
    case WeightLayout::kMxfp4:
      s.data = d + r0 * w.cols / 2;
      s.scales = sc + r0 * (w.cols / 32);
      break;
  }
  return s;
}

}  // namespace v4b
