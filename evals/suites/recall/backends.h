// Where the recall suite sends its prompts: the embedded engine (greedy decoding, logits at the
// answer positions, any attention mode on the same weights) or an OpenAI-compatible completions
// endpoint (text in, text out, token counts from the server's usage; no logits).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "evals/backends/base_url.h"
#include "engine/io/tokenizer.h"
#include "engine/runtime/engine.h"
#include "evals/suites/recall/generators.h"

namespace v4b::evals::recall {

struct Completion {
  std::string text;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double seconds = 0;
  // Engine only, when gold ids are given: the logits before each of them (teacher-forced).
  std::vector<std::vector<float>> answer_logits;
};

class RecallBackend {
 public:
  virtual ~RecallBackend() = default;
  // Greedy completion of s.prompt under `mode`. Decoding stops at EOS, after s.max_new_tokens, or
  // once every reference is in the text: containment survives any further tokens, so the score
  // is the same as decoding to the end.
  virtual Completion complete(const RecallSample& s, AttentionMode mode, const std::vector<int32_t>& gold_ids) = 0;
  virtual bool has_logits() const = 0;
};

// The engine: one session per attention mode on one set of weights, all with `numerics`. `map_ids`
// folds token ids into a model vocabulary smaller than the tokenizer's (plumbing runs on synthetic
// presets only).
class EngineBackend : public RecallBackend {
 public:
  EngineBackend(const std::string& model, uint64_t seed, bool map_ids, const Tokenizer& tok, Numerics numerics = Numerics::kModelDefault);
  Completion complete(const RecallSample& s, AttentionMode mode, const std::vector<int32_t>& gold_ids) override;
  bool has_logits() const override { return true; }
  const ModelConfig& config() const { return engine_->config(); }

 private:
  int32_t map(int32_t id) const;
  std::unique_ptr<Engine> engine_;
  std::map<int, std::unique_ptr<Session>> sessions_;
  bool map_ids_;
  const Tokenizer& tok_;
  Numerics numerics_;
};

// POST {base_url}/completions {model, prompt, max_tokens, temperature: 0}; an API key, when given,
// goes in "Authorization: Bearer". Failures throw std::runtime_error (the case is stored as failed).
class HttpBackend : public RecallBackend {
 public:
  HttpBackend(std::string base_url, std::string model, std::string api_key);
  Completion complete(const RecallSample& s, AttentionMode mode, const std::vector<int32_t>& gold_ids) override;
  bool has_logits() const override { return false; }

 private:
  BaseUrl url_;
  std::string model_, api_key_;
};

// Text of ids; ids without a token in this vocabulary are skipped (a model may be larger).
std::string decode_known(const Tokenizer& tok, const std::vector<int32_t>& ids);

}  // namespace v4b::evals::recall
