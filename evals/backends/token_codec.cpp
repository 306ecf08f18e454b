#include "evals/backends/token_codec.h"

#include <fmt/format.h>

#include "evals/backends/http_client.h"

namespace v4b::evals {

namespace {

using nlohmann::json;

std::string tokenizer_root(const BaseUrl& u) { return u.prefix.ends_with("/v1") ? u.prefix.substr(0, u.prefix.size() - 3) : u.prefix; }

std::vector<int32_t> ids_of(const json& reply, const std::string& where) {
  if (!reply.contains("tokens") || !reply["tokens"].is_array()) throw HttpError(where + " answered without 'tokens'", 200, 1);
  return reply["tokens"].get<std::vector<int32_t>>();
}

}  // namespace

std::string LocalCodec::decode(std::span<const int32_t> ids) const {
  std::vector<int32_t> known;
  for (int32_t id : ids)
    if (tok_.id_to_token(id)) known.push_back(id);
  return tok_.decode(known);
}

ServerCodec::ServerCodec(HttpClient& client, std::string model) : client_(client), model_(std::move(model)), root_(tokenizer_root(client.url())) {
  // One empty prompt with special tokens says what the server prepends, and which dialect it speaks.
  json probe;
  try {
    probe = client_.post(root_ + "/tokenize", tokenize_body("", true));
  } catch (const HttpError& e) {
    if (e.status() != 400 && e.status() != 422) throw;
    llama_ = true;  // llama.cpp's server wants "content", not "prompt"
    probe = client_.post(root_ + "/tokenize", tokenize_body("", true));
  }
  const auto ids = ids_of(probe, client_.url().origin + root_ + "/tokenize");
  if (!ids.empty()) bos_ = ids.front();
  if (probe.contains("max_model_len") && probe["max_model_len"].is_number_integer()) max_len_ = probe["max_model_len"].get<int64_t>();
}

json ServerCodec::tokenize_body(std::string_view text, bool special) const {
  if (llama_) return {{"content", text}, {"add_special", special}};
  return {{"model", model_}, {"prompt", text}, {"add_special_tokens", special}};
}

std::vector<int32_t> ServerCodec::encode(std::string_view text) const {
  return ids_of(client_.post(root_ + "/tokenize", tokenize_body(text, false)), client_.url().origin + root_ + "/tokenize");
}

std::string ServerCodec::decode(std::span<const int32_t> ids) const {
  if (ids.empty()) return "";
  json body = {{"tokens", std::vector<int32_t>(ids.begin(), ids.end())}};
  if (!llama_) body["model"] = model_;
  const json reply = client_.post(root_ + "/detokenize", body);
  const char* key = llama_ ? "content" : "prompt";
  if (!reply.contains(key) || !reply[key].is_string())
    throw HttpError(fmt::format("{}{}/detokenize answered without '{}'", client_.url().origin, root_, key), 200, 1);
  return reply[key].get<std::string>();
}

std::string ServerCodec::piece(int32_t id) const {
  {
    std::lock_guard lk(mu_);
    if (auto it = pieces_.find(id); it != pieces_.end()) return it->second;
  }
  std::string text = decode({&id, 1});
  std::lock_guard lk(mu_);
  return pieces_.emplace(id, std::move(text)).first->second;
}

std::string ServerCodec::describe() const {
  return fmt::format("the server's /tokenize at {}{}{}", client_.url().origin, root_, llama_ ? " (llama.cpp dialect)" : "");
}

std::unique_ptr<ServerCodec> server_codec_if_served(HttpClient& client, const std::string& model) {
  try {
    return std::make_unique<ServerCodec>(client, model);
  } catch (const HttpError& e) {
    if (e.status() == 404 || e.status() == 405) return nullptr;  // no such endpoint
    throw;
  }
}

}  // namespace v4b::evals
