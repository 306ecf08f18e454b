#include "evals/suites/recall/backends.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/core/errors.h"
#include "evals/suites/recall/scoring.h"

namespace v4b::evals::recall {

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

std::string decode_known(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<int32_t> known;
  for (int32_t id : ids)
    if (tok.id_to_token(id)) known.push_back(id);
  return tok.decode(known);
}

EngineBackend::EngineBackend(const std::string& model, uint64_t seed, bool map_ids, const Tokenizer& tok, Numerics numerics)
    : engine_(Engine::open(model, {}, seed)), map_ids_(map_ids), tok_(tok), numerics_(numerics) {}

int32_t EngineBackend::map(int32_t id) const {
  const int64_t v = engine_->config().vocab;
  if (id < v) return id;
  if (map_ids_) return static_cast<int32_t>(id % v);
  throw UsageError(fmt::format("token id {} is outside the vocabulary of {} (0..{}); --map-ids folds ids for synthetic presets", id,
                               engine_->config().name, v - 1));
}

Completion EngineBackend::complete(const RecallSample& s, AttentionMode mode, const std::vector<int32_t>& gold_ids) {
  auto& session = sessions_[static_cast<int>(mode)];
  if (!session) session = engine_->new_session({mode, KvFormat::kBf16, false, numerics_});
  session->reset();
  Completion out;
  const double t0 = now_s();
  std::vector<int32_t> ids(s.ids.size());
  std::transform(s.ids.begin(), s.ids.end(), ids.begin(), [&](int32_t id) { return map(id); });
  const auto first = session->prefill(ids);
  std::vector<float> logits(first.begin(), first.end());
  out.prompt_tokens = static_cast<int64_t>(ids.size());
  if (!gold_ids.empty()) {
    out.answer_logits.push_back(logits);
    if (gold_ids.size() > 1) {
      const auto snap = session->snapshot();
      std::vector<int32_t> forced;
      for (size_t i = 0; i + 1 < gold_ids.size(); ++i) forced.push_back(map(gold_ids[i]));
      std::vector<float> all;
      session->prefill(forced, &all);
      const size_t v = logits.size();
      for (size_t i = 0; i < forced.size(); ++i) out.answer_logits.emplace_back(all.begin() + i * v, all.begin() + (i + 1) * v);
      session->restore(*snap);
    }
  }
  std::vector<int32_t> gen;
  const int64_t eos = engine_->config().eos_token_id;
  for (int i = 0; i < s.max_new_tokens; ++i) {
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (next == eos) break;
    gen.push_back(next);
    out.text = decode_known(tok_, gen);
    if (match_score(s.metric, out.text, s.references) >= 1) break;
    if (i + 1 < s.max_new_tokens) {
      const auto l = session->decode(next);
      logits.assign(l.begin(), l.end());
    }
  }
  out.completion_tokens = static_cast<int64_t>(gen.size());
  out.seconds = now_s() - t0;
  return out;
}

HttpBackend::HttpBackend(std::string base_url, std::string model, std::string api_key)
    : url_(parse_base_url(base_url)), model_(std::move(model)), api_key_(std::move(api_key)) {}

Completion HttpBackend::complete(const RecallSample& s, AttentionMode, const std::vector<int32_t>&) {
  httplib::Client cli(url_.origin);
  cli.set_connection_timeout(30);
  cli.set_read_timeout(3600);
  httplib::Headers headers;
  if (!api_key_.empty()) headers.emplace("Authorization", "Bearer " + api_key_);
  const nlohmann::json body = {{"model", model_}, {"prompt", s.prompt}, {"max_tokens", s.max_new_tokens}, {"temperature", 0}, {"top_p", 1}};
  const double t0 = now_s();
  const auto res = cli.Post(url_.prefix + "/completions", headers, body.dump(), "application/json");
  if (!res) throw std::runtime_error(fmt::format("{}{}/completions: {}", url_.origin, url_.prefix, httplib::to_string(res.error())));
  if (res->status != 200)
    throw std::runtime_error(fmt::format("{}{}/completions answered HTTP {}: {}", url_.origin, url_.prefix, res->status, res->body.substr(0, 200)));
  Completion out;
  out.seconds = now_s() - t0;
  try {
    const auto j = nlohmann::json::parse(res->body);
    out.text = j.at("choices").at(0).at("text").get<std::string>();
    if (j.contains("usage")) {
      out.prompt_tokens = j["usage"].value("prompt_tokens", int64_t{-1});
      out.completion_tokens = j["usage"].value("completion_tokens", int64_t{-1});
    } else {
      out.prompt_tokens = out.completion_tokens = -1;
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("{}{}/completions: not an OpenAI completions response ({})", url_.origin, url_.prefix, e.what()));
  }
  return out;
}

}  // namespace v4b::evals::recall
