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
  const json probe = client_.post(root_ + "/tokenize", {{"model", model_}, {"prompt", ""}, {"add_special_tokens", true}});
  const auto ids = ids_of(probe, client_.url().origin + root_ + "/tokenize");
  if (!ids.empty()) bos_ = ids.front();
  if (probe.contains("max_model_len") && probe["max_model_len"].is_number_integer()) max_len_ = probe["max_model_len"].get<int64_t>();
}

std::vector<int32_t> ServerCodec::encode(std::string_view text) const {
  const json reply = client_.post(root_ + "/tokenize", {{"model", model_}, {"prompt", text}, {"add_special_tokens", false}});
  return ids_of(reply, client_.url().origin + root_ + "/tokenize");
}

std::string ServerCodec::decode(std::span<const int32_t> ids) const {
  if (ids.empty()) return "";
  const json reply = client_.post(root_ + "/detokenize", {{"model", model_}, {"tokens", std::vector<int32_t>(ids.begin(), ids.end())}});
  if (!reply.contains("prompt") || !reply["prompt"].is_string())
    throw HttpError(client_.url().origin + root_ + "/detokenize answered without 'prompt'", 200, 1);
  return reply["prompt"].get<std::string>();
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

std::string ServerCodec::describe() const { return fmt::format("the server's /tokenize at {}{}", client_.url().origin, root_); }

std::unique_ptr<ServerCodec> server_codec_if_served(HttpClient& client, const std::string& model) {
  try {
    return std::make_unique<ServerCodec>(client, model);
  } catch (const HttpError& e) {
    if (e.status() == 404) return nullptr;  // post() reports 404 and 405 alike
    throw;
  }
}

}  // namespace v4b::evals
