// The engine's public interface: the CLI, servers and suites use only this header.
//   Engine  — a loaded model (read-only weights), shareable between sessions.
//   Session — one timeline: prefill (in any chunks), decode, logits, snapshot/restore, reset,
//             with the KV bytes it holds by kind and the work it has done by category.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/core/counters.h"
#include "engine/kernels/cpu/cpu_features.h"
#include "engine/models/cost_model.h"
#include "engine/models/model_config.h"

namespace v4b {

class ThreadPool;

// How a session attends (spec: suites pair compressed and full attention on identical weights).
enum class AttentionMode {
  kNative,  // as the architecture was designed
  kDense,   // every layer attends causally to every raw KV entry; compressors and indexers off
  kWindow,  // V4 only: the sliding window alone
};
std::string_view attention_mode_name(AttentionMode m);
AttentionMode parse_attention_mode(std::string_view text);  // throws UsageError

// The arithmetic a session follows.
enum class Numerics {
  kModelDefault,  // official for DeepSeek-V4, else fp32 (V3.2 has official on request)
  kFp32,          // FP32 activations between kernels: the reference path of the FP64 tests
  kOfficial,      // what DeepSeek's own inference code computes (spec §7.7): BF16 tensors where it
                  // holds them, FP8 activation quantisation in front of every FP8 / FP4 GEMM; V4:
                  // BF16 index scores, 64-entry online-softmax blocks with BF16 probabilities; V3.2:
                  // FP8-quantised index queries and keys (deepseek_v32.cpp)
};
std::string_view numerics_name(Numerics n);           // "fp32", "official" ("default" for kModelDefault)
Numerics parse_numerics(std::string_view text);       // "fp32" | "official"; throws UsageError
bool has_official_numerics(const ModelConfig& m);     // DeepSeek-V4 and V3.2
// What a session of this model runs for `requested`: kModelDefault resolved; UsageError (one line)
// for official on a family without it.
Numerics resolve_numerics(const ModelConfig& m, Numerics requested);

struct SessionOptions {
  AttentionMode attention = AttentionMode::kNative;
  KvFormat kv_format = KvFormat::kBf16;
  // Weight matmuls read activations rounded to BF16 (FP8, FP4 and BF16 weights; KernelContext), so
  // AVX512-BF16 CPUs decode with BF16 dot products. Off: FP32 activations, the reference numerics.
  // Implied by official numerics, whose GEMM operands are exact in BF16.
  bool bf16_activations = false;
  Numerics numerics = Numerics::kModelDefault;
};

class Session {
 public:
  virtual ~Session() = default;

  // Appends tokens to the timeline. Returns the logits after the last one; with all_logits, the
  // logits after every token ([tokens.size()][vocab]) are written there.
  virtual std::span<const float> prefill(std::span<const int32_t> tokens, std::vector<float>* all_logits = nullptr) = 0;
  std::span<const float> decode(int32_t token) { return prefill({&token, 1}); }
  virtual std::span<const float> logits() const = 0;  // after the last token; empty before the first
  virtual int64_t position() const = 0;               // tokens processed so far

  virtual KvBytes kv_bytes() const = 0;
  virtual const OpCounters& counters() const = 0;
  virtual void reset_counters() = 0;

  // An opaque copy of the whole timeline state; restore() continues from it exactly.
  struct Snapshot {
    virtual ~Snapshot() = default;
  };
  virtual std::unique_ptr<Snapshot> snapshot() const = 0;
  virtual void restore(const Snapshot& s) = 0;
  virtual void reset() = 0;
};

// One session's part of Engine::step: the tokens it appends.
struct StepItem {
  Session* session = nullptr;
  std::span<const int32_t> tokens;
};

struct EngineOptions {
  ThreadPool* pool = nullptr;  // nullptr: the default pool
  CpuIsa isa = CpuIsa::kAuto;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // A checkpoint directory (config.json + safetensors). Every tensor's name, dtype and shape is
  // checked before any compute; problems throw UsageError naming each one.
  static std::unique_ptr<Engine> load(const std::string& dir, const EngineOptions& opts = {});

  // A checkpoint directory or a synthetic preset name (v4-tiny, v4-small, v32-tiny, ...), which is
  // synthesised with `seed` on first use and cached (engine/synth/synth.h).
  static std::unique_ptr<Engine> open(const std::string& model, const EngineOptions& opts = {}, uint64_t seed = 0);

  virtual const ModelConfig& config() const = 0;
  virtual std::unique_ptr<Session> new_session(const SessionOptions& opts = {}) const = 0;

  // Advances several of this engine's sessions in one forward pass: each appends its tokens as
  // prefill() would, and its logits() are then those after its last token. The position-independent
  // work (projections, experts, mHC, the head) runs as one matmul over every session's rows, so N
  // decode steps read the weights about once; cache writes and attention stay per session. Sessions
  // must be distinct, made by this engine, and share an attention mode, bf16_activations and numerics
  // (UsageError otherwise; nothing is changed then). Work done once for all is split among the
  // sessions' counters by their share of the rows.
  virtual void step(std::span<const StepItem> items) const = 0;
};

}  // namespace v4b
