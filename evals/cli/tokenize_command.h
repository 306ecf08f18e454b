// `v4bench tokenize` (token ids of a text) and `v4bench detokenize` (text of token ids), with the
// shipped DeepSeek vocabulary unless --tokenizer names another.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace v4b::cli {

struct TokenizeCommand {
  CLI::App* app = nullptr;
  std::string text, file, tokenizer, format = "table";
  bool bos = false;
};

std::unique_ptr<TokenizeCommand> add_tokenize_command(CLI::App& parent);
int run_tokenize_command(const TokenizeCommand& cmd);

struct DetokenizeCommand {
  CLI::App* app = nullptr;
  std::string ids, tokenizer, format = "table";
};

std::unique_ptr<DetokenizeCommand> add_detokenize_command(CLI::App& parent);
int run_detokenize_command(const DetokenizeCommand& cmd);

}  // namespace v4b::cli
