// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (the format DeepSeek ships),
// with HF `tokenizers` semantics: added tokens are matched first (leftmost-longest), the rest is
// split by the pre-tokenizer regexes (PCRE2 with Unicode properties), mapped to byte-level
// characters and merged by merge rank. The default is the DeepSeek-V3 vocabulary shipped in
// datasets/tokenizer/deepseek_v3, with the DeepSeek-V4 chat tokens added where it lacks them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace v4b {

// The datasets/ folder: $V4BENCH_DATASETS if set, else the first datasets/ found beside or above the
// running executable, else the one in the source tree this binary was built from.
std::filesystem::path datasets_dir();

// datasets/tokenizer/deepseek_v3 (a directory; Tokenizer::load finds the file inside).
std::filesystem::path default_tokenizer_path();

// A token added on top of the BPE vocabulary (HF "added_tokens"): matched in raw text before BPE.
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool normalized = false;  // HF matches these after normalisation; kept for fidelity
};

// DeepSeek-V4 chat and task tokens (spec §5.6) that the V3 vocabulary lacks. Load adds each one
// whose text and id are both free, so a V4 tokenizer.json that already has them is left alone.
const std::vector<AddedToken>& deepseek_v4_added_tokens();

struct TokenizerOptions {
  // Add deepseek_v4_added_tokens() when the file is a DeepSeek vocabulary (BOS text at id 0).
  bool add_v4_tokens = true;
};

class Tokenizer {
 public:
  // `path` is a tokenizer.json (plain or gzip-compressed), a directory holding tokenizer.json or
  // tokenizer.json.gz, or empty for default_tokenizer_path(). A tokenizer_config.json beside the file
  // names BOS and EOS. Every problem (missing, truncated, not JSON, unsupported model or
  // pre-tokenizer) is a UsageError naming the file and what is wrong.
  static Tokenizer load(const std::filesystem::path& path = {}, const TokenizerOptions& opts = {});
  // The tokenizer of a model named as the engine takes it: a checkpoint directory's own
  // tokenizer.json when it has one, else (a preset name, or a directory without one) the default.
  static Tokenizer for_checkpoint(const std::filesystem::path& checkpoint_dir, const TokenizerOptions& opts = {});
  // From JSON text already in memory; `origin` names it in error messages.
  static Tokenizer from_json(std::string_view json_text, const std::string& origin, const TokenizerOptions& opts = {},
                             const std::string& config_json = {});

  // Token ids of UTF-8 `text` (a UsageError if it is not valid UTF-8). Added and special tokens in
  // the text map to their ids. BOS is prepended only when asked. Thread-safe; each thread keeps its
  // own cache of words already merged.
  std::vector<int32_t> encode(std::string_view text, bool add_bos = false) const;

  // Text of `ids`. Byte sequences that are not valid UTF-8 (a multi-byte character cut between
  // ids, or stray bytes) become U+FFFD, one per maximal invalid subpart, as HF's from_utf8_lossy
  // does. An id with no token is a UsageError naming it.
  std::string decode(std::span<const int32_t> ids) const;
  // The raw bytes of `ids`, invalid UTF-8 kept as is (for streaming: join, then validate).
  std::string decode_bytes(std::span<const int32_t> ids) const;

  // Token text as written in tokenizer.json (byte-level form for BPE tokens, e.g. "Ġthe").
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  // One past the largest id with a token; ids below it may still be unassigned (gaps).
  int32_t vocab_size() const;
  // Number of ids that have a token.
  int32_t n_tokens() const;

  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  const std::vector<AddedToken>& added_tokens() const;
  // The V4 tokens load added to this vocabulary (empty when the file had them or is not DeepSeek's).
  const std::vector<AddedToken>& v4_tokens_added() const;
  // The file this tokenizer came from.
  const std::string& source() const;

  // Drops the calling thread's word cache for this tokenizer (benchmarks measure a cold cache).
  void clear_thread_cache() const;

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Replaces invalid UTF-8 with U+FFFD (maximal subparts, as Rust's String::from_utf8_lossy).
std::string utf8_lossy(std::string_view bytes);
// Offset of the first byte that is not part of valid UTF-8, or npos.
size_t utf8_invalid_offset(std::string_view bytes);

}  // namespace v4b
