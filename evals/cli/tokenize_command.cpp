#include "evals/cli/tokenize_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "engine/io/files.h"
#include "engine/io/tokenizer.h"
#include "evals/cli/cli_util.h"

namespace v4b::cli {

namespace {

using nlohmann::json;

// The flags tokenize and detokenize share, after each one's own.
void add_tokenizer_options(CLI::App& cmd, std::string& tokenizer, std::string& format) {
  cmd.add_option("--tokenizer", tokenizer,
                 "a tokenizer.json (plain or gzip), or a directory holding one (default: datasets/tokenizer/deepseek_v3)");
  cmd.add_option("--format", format, "output format")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
}

}  // namespace

std::unique_ptr<TokenizeCommand> add_tokenize_command(CLI::App& parent) {
  auto cmd = std::make_unique<TokenizeCommand>();
  CLI::App* a = cmd->app = parent.add_subcommand("tokenize", "token ids of a text (DeepSeek byte-level BPE, V4 chat tokens)");
  a->add_option("--text", cmd->text, "the text to tokenize");
  a->add_option("--file", cmd->file, "read the text to tokenize from this file (UTF-8)");
  a->add_flag("--bos", cmd->bos, "prepend the BOS token (<｜begin▁of▁sentence｜>, id 0)");
  add_tokenizer_options(*a, cmd->tokenizer, cmd->format);
  a->footer(
      "\nExactly one of --text and --file. Special and chat tokens written in the text (<｜User｜>, <think>, ...) map to\n"
      "their ids. Prints the ids comma-separated on one line (feed them to `v4bench detokenize --ids`), or with\n"
      "--format json one object {\"ids\": [...]}.\n\nExample: v4bench tokenize --text 'Hello, world!' --bos   ->   0,19923,14,2058,3");
  return cmd;
}

int run_tokenize_command(const TokenizeCommand& cmd) {
  const bool has_text = cmd.app->count("--text") > 0, has_file = cmd.app->count("--file") > 0;
  if (has_text == has_file) throw UsageError("tokenize needs exactly one of --text or --file");
  const std::string text = has_text ? cmd.text : read_file_bytes(cmd.file, "--file");
  const Tokenizer tok = Tokenizer::load(cmd.tokenizer);
  const auto ids = tok.encode(text, cmd.bos);
  if (cmd.format == "json") fmt::print("{}\n", json{{"ids", ids}}.dump());
  else fmt::print("{}\n", fmt::join(ids, ","));
  return 0;
}

std::unique_ptr<DetokenizeCommand> add_detokenize_command(CLI::App& parent) {
  auto cmd = std::make_unique<DetokenizeCommand>();
  CLI::App* a = cmd->app = parent.add_subcommand("detokenize", "text of token ids");
  a->add_option("--ids", cmd->ids, "comma-separated token ids, e.g. 19923,14,2058,3")->required();
  add_tokenizer_options(*a, cmd->tokenizer, cmd->format);
  a->footer(
      "\nPrints the decoded text exactly, with no newline added; byte sequences that are not valid UTF-8 become\n"
      "U+FFFD. --format json prints {\"text\": \"...\"}. An id that is not an integer or not in the vocabulary is an error.\n\n"
      "Example: v4bench detokenize --ids 19923,14,2058,3   ->   Hello, world!");
  return cmd;
}

int run_detokenize_command(const DetokenizeCommand& cmd) {
  const auto ids = parse_ids(cmd.ids, "--ids");
  const Tokenizer tok = Tokenizer::load(cmd.tokenizer);
  const std::string text = tok.decode(ids);
  if (cmd.format == "json") fmt::print("{}\n", json{{"text", text}}.dump());
  else fmt::print("{}", text);
  return 0;
}

}  // namespace v4b::cli
