// The tensor inventory of a model: every tensor a real checkpoint of a ModelConfig holds, with its
// official name, stored dtype and shape (spec §1.6, §5.2–§5.5). The weight binder checks a
// checkpoint against this list before any compute, and tests build synthetic checkpoints from it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/dtypes.h"
#include "engine/models/model_config.h"

namespace v4b {

struct TensorSpec {
  std::string name;
  DType dtype = DType::BF16;
  std::vector<int64_t> shape;
};

// Every tensor of a checkpoint of `m`, in a stable order (globals, then layer by layer, MTP last).
//  * deepseek_v4: official inference names without a `model.` prefix (`embed.weight`,
//    `layers.{i}.attn.wq_a.weight` + `.scale`, `mtp.{j}.*`). FP8 weights are F8_E4M3 with an F8_E8M0
//    `.scale` per 128x128 block; FP4 routed experts are I8 [out, in/2] (two E2M1 codes per byte)
//    with an F8_E8M0 `.scale` [out, in/32]. With m.dense_weights == kBf16 every projection is BF16
//    and there are no scale tensors (synthetic checkpoints).
//  * deepseek_v32 / deepseek_v3: Hugging Face names (`model.layers.{i}.self_attn.q_a_proj.weight`
//    + `.weight_scale_inv` F32 per 128x128 block); the MTP block is `model.layers.{n_layers + j}.*`.
//  * dense GQA (llama, mistral, qwen2): Hugging Face names, BF16 (FP8 + weight_scale_inv when the
//    config declares fp8 quantisation); no lm_head.weight when tie_word_embeddings.
// The MTP block(s) are listed only with include_mtp.
std::vector<TensorSpec> expected_tensors(const ModelConfig& m, bool include_mtp);

// True for the quantisation scale of another tensor (`*.scale`, `*.weight_scale_inv`).
bool is_scale_tensor(std::string_view name);
// Parameters a tensor holds: numel, except packed FP4 (I8, the only use of I8 in these checkpoints)
// which holds two per byte.
int64_t logical_params(const TensorSpec& t);
int64_t numel(const std::vector<int64_t>& shape);
// "[1024, 4096]".
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace v4b
