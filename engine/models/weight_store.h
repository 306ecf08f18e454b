// Typed, zero-copy access to a loaded checkpoint's tensors for the model code: matrices in their
// stored layout (the matmul kernels dequantise on the fly) and small vectors converted to FP32.
// Shapes and dtypes were checked by the weight binder before anything reaches here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"
#include "engine/kernels/cpu/matmul.h"

namespace v4b {

class WeightStore {
 public:
  explicit WeightStore(std::shared_ptr<const CheckpointReader> ckpt) : ckpt_(std::move(ckpt)) {}

  bool has(const std::string& name) const { return ckpt_->find(name) != nullptr; }
  // A weight matrix; its layout follows the dtypes of `name` and of `scale_name` (if present).
  WeightMatrix matrix(const std::string& name, const std::string& scale_name) const;
  // A 1-D or 2-D tensor of BF16, F16 or F32 values as FP32 (copied).
  std::vector<float> floats(const std::string& name) const;
  // An I64 tensor (copied).
  std::vector<int64_t> int64s(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const { return ckpt_->at(name); }
  // Matrices point into the checkpoint's mapping: whoever keeps them keeps this alive.
  std::shared_ptr<const CheckpointReader> checkpoint() const { return ckpt_; }

 private:
  std::shared_ptr<const CheckpointReader> ckpt_;
};

// Rows [r0, r0 + n) of a matrix; FP8 block-scaled matrices need r0 on a 128-row boundary.
WeightMatrix slice_rows(const WeightMatrix& w, int64_t r0, int64_t n);

}  // namespace v4b
