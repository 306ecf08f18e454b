// Binding a checkpoint to a model config: every tensor the config needs must be present with the
// right dtype and shape before any compute starts, so a wrong or damaged checkpoint fails at load
// time with a list of everything that is wrong, never halfway through a forward pass.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"
#include "engine/models/model_config.h"

namespace v4b {

// Problem lines printed before "... and N more".
inline constexpr size_t kMaxListedProblems = 20;

// Every way `ckpt` differs from expected_tensors(m, require_mtp), one line per tensor in inventory
// order: "missing tensor NAME" or "NAME: dtype X, expected Y; shape [..], expected [..]". Empty when
// the checkpoint fits.
//
// Tensors the inventory does not name are ignored: checkpoints carry things the engine never
// reads, notably the MTP block when MTP decoding is not requested (require_mtp = false), whose
// tensors are then not checked at all.
std::vector<std::string> checkpoint_problems(const ModelConfig& m, const CheckpointReader& ckpt, bool require_mtp = false);

// The report for a non-empty problem list: "checkpoint PATH does not match config (N problems):"
// then one indented line per problem, at most kMaxListedProblems, then "  ... and N more".
std::string format_checkpoint_problems(const std::string& path, const std::vector<std::string>& problems);

// Throws UsageError with format_checkpoint_problems' text when the checkpoint does not fit.
void check_checkpoint(const ModelConfig& m, const CheckpointReader& ckpt, bool require_mtp = false);

}  // namespace v4b
