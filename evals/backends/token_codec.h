// Text <-> token ids in the vocabulary of the model a backend serves, so prompts are sized in that
// model's tokens: the engine's tokenizer.json (LocalCodec), or a server's own /tokenize and
// /detokenize (ServerCodec: vLLM, SGLang and `v4bench serve` have them).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/io/tokenizer.h"

namespace v4b::evals {

class HttpClient;

class TokenCodec {
 public:
  virtual ~TokenCodec() = default;
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;  // without BOS
  virtual std::string decode(std::span<const int32_t> ids) const = 0;    // ids with no text are skipped
  virtual std::string piece(int32_t id) const = 0;                        // the bytes of one token
  virtual std::optional<int32_t> bos_id() const = 0;                      // prepended to every prompt, when there is one
  virtual int64_t vocab_size() const = 0;                                 // 0: not known (a server)
  virtual std::string describe() const = 0;                               // for messages and run records
};

class LocalCodec : public TokenCodec {
 public:
  explicit LocalCodec(Tokenizer tok) : tok_(std::move(tok)) {}
  std::vector<int32_t> encode(std::string_view text) const override { return tok_.encode(text); }
  std::string decode(std::span<const int32_t> ids) const override;
  std::string piece(int32_t id) const override { return tok_.decode_bytes({&id, 1}); }
  std::optional<int32_t> bos_id() const override { return tok_.bos_id(); }
  int64_t vocab_size() const override { return tok_.vocab_size(); }
  std::string describe() const override { return "tokenizer " + tok_.source(); }
  const Tokenizer& tokenizer() const { return tok_; }

 private:
  Tokenizer tok_;
};

// Every call is a request to the server; pieces are cached per id. Speaks vLLM's dialect (SGLang
// and `v4bench serve` too: "prompt", "add_special_tokens") or llama.cpp's ("content", "add_special").
class ServerCodec : public TokenCodec {
 public:
  // Asks the server once (what BOS it adds); throws HttpError when it has no /tokenize.
  ServerCodec(HttpClient& client, std::string model);
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  std::string piece(int32_t id) const override;
  std::optional<int32_t> bos_id() const override { return bos_; }
  int64_t vocab_size() const override { return 0; }
  std::string describe() const override;
  // The server's context length, when /tokenize reports one (vLLM and v4bench serve: max_model_len).
  std::optional<int64_t> max_model_len() const { return max_len_; }

 private:
  nlohmann::json tokenize_body(std::string_view text, bool special) const;

  HttpClient& client_;
  bool llama_ = false;
  std::string model_, root_;  // root_: the base URL's path without /v1, where vLLM serves /tokenize
  std::optional<int32_t> bos_;
  std::optional<int64_t> max_len_;
  mutable std::mutex mu_;
  mutable std::map<int32_t, std::string> pieces_;
};

// Does `base_url`'s server tokenize (POST /tokenize answers)? ServerCodec when it does, else nullptr.
std::unique_ptr<ServerCodec> server_codec_if_served(HttpClient& client, const std::string& model);

}  // namespace v4b::evals
