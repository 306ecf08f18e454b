// The DeepSeek-V4 chat encoding (spec §5.6), without tools: a conversation rendered to the prompt
// text DeepSeek's encoding_dsv4.py produces, then tokenized. Shape, with T = <think> in thinking
// mode and </think> otherwise:
//
//   BOS  system...  <｜User｜>u1<｜Assistant｜></think>a1<｜end▁of▁sentence｜>  <｜User｜>u2<｜Assistant｜>T
//
// - System messages contribute their text, as is, where they stand.
// - A user turn is <｜User｜> + text; consecutive user turns merge into one, joined by "\n\n". The
//   assistant header <｜Assistant｜> + T follows a user turn that is last or followed by an assistant.
// - Only turns after the last user turn keep their reasoning: in thinking mode such an assistant
//   turn is reasoning + </think> + answer + EOS, and its header carries <think>. Earlier assistant
//   turns lose their reasoning and their header carries </think>, as in chat mode.
// - A finished assistant turn ends with EOS; a conversation ending on a user turn ends with the
//   header, ready for generation.
// - The whole prompt is tokenized at once, as DeepSeek's is, so a chat token written inside a
//   message (say "<think>") is that token, not text.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/io/tokenizer.h"

namespace v4b {

struct Message {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
  std::optional<std::string> reasoning;  // assistant only: the thinking text
};

// The prompt text (BOS and the chat tokens spelled out). UsageError on an unknown role.
std::string render_chat(const std::vector<Message>& messages, bool thinking);

// render_chat tokenized with `tok`; every chat token must be a single token of its vocabulary (a
// UsageError names the one that is not).
std::vector<int32_t> encode_chat(const std::vector<Message>& messages, bool thinking, const Tokenizer& tok);

}  // namespace v4b
