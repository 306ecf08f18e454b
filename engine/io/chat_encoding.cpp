#include "engine/io/chat_encoding.h"

#include <fmt/format.h>

#include "common/errors.h"

namespace v4b {

namespace {

constexpr const char* kBos = "<｜begin▁of▁sentence｜>";
constexpr const char* kEos = "<｜end▁of▁sentence｜>";
constexpr const char* kUser = "<｜User｜>";
constexpr const char* kAssistant = "<｜Assistant｜>";
constexpr const char* kThinkStart = "<think>";
constexpr const char* kThinkEnd = "</think>";

}  // namespace

std::string render_chat(const std::vector<Message>& messages, bool thinking) {
  // Consecutive user turns become one, as encoding_dsv4.py's merge_tool_messages does.
  std::vector<Message> msgs;
  for (const auto& m : messages) {
    if (m.role != "system" && m.role != "user" && m.role != "assistant")
      throw UsageError(fmt::format("chat message role '{}' is not one of system, user, assistant", m.role));
    if (m.role == "user" && !msgs.empty() && msgs.back().role == "user") msgs.back().content += "\n\n" + m.content;
    else msgs.push_back(m);
  }
  int64_t last_user = -1;
  for (size_t i = 0; i < msgs.size(); ++i)
    if (msgs[i].role == "user") last_user = static_cast<int64_t>(i);

  std::string out = kBos;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const Message& m = msgs[i];
    const auto idx = static_cast<int64_t>(i);
    if (m.role == "system") {
      out += m.content;
    } else if (m.role == "user") {
      out += kUser;
      out += m.content;
      // The header opens the assistant's reply: after the last message, or before an assistant turn.
      if (i + 1 == msgs.size() || msgs[i + 1].role == "assistant") {
        out += kAssistant;
        out += thinking && idx >= last_user ? kThinkStart : kThinkEnd;
      }
    } else {
      // Reasoning survives only after the last user turn; earlier turns drop it.
      if (thinking && idx > last_user) {
        out += m.reasoning.value_or("");
        out += kThinkEnd;
      }
      out += m.content;
      out += kEos;
    }
  }
  return out;
}

std::vector<int32_t> encode_chat(const std::vector<Message>& messages, bool thinking, const Tokenizer& tok) {
  for (const char* t : {kBos, kEos, kUser, kAssistant, kThinkStart, kThinkEnd})
    if (!tok.token_to_id(t))
      throw UsageError(fmt::format("tokenizer '{}' has no token {}: it cannot encode the DeepSeek-V4 chat format", tok.source(), t));
  return tok.encode(render_chat(messages, thinking));
}

}  // namespace v4b
