#include "evals/backends/engine_backend.h"

#include <filesystem>

#include <fmt/format.h>

#include "common/errors.h"
#include "engine/models/presets.h"

namespace v4b::evals {

namespace {

double seconds(Clock::time_point from, Clock::time_point to) { return std::chrono::duration<double>(to - from).count(); }

// Where a stop string first occurs in `text` (npos: none).
size_t first_stop(const std::string& text, const std::vector<std::string>& stops) {
  size_t at = std::string::npos;
  for (const auto& s : stops)
    if (!s.empty()) at = std::min(at, text.find(s));
  return at;
}

}  // namespace

bool is_runnable(const std::string& model) {
  if (std::filesystem::is_directory(model)) return true;
  return preset_config_json(model).value("synthetic", false);
}

EngineBackend::EngineBackend(const BackendSpec& spec) : spec_(spec) {
  if (spec.threads > 0) pool_ = std::make_unique<ThreadPool>(spec.threads);  // else the engine's shared default pool
  engine_ = Engine::open(spec.model, {pool_.get()}, spec.seed);
  numerics_ = resolve_numerics(engine_->config(), spec.numerics.empty() ? Numerics::kModelDefault : parse_numerics(spec.numerics));
}

EngineBackend::~EngineBackend() = default;  // the scheduler stops before the engine goes

const TokenCodec& EngineBackend::tokens() const {
  std::call_once(codec_once_, [&] {
    codec_ = std::make_unique<LocalCodec>(spec_.tokenizer.empty() ? Tokenizer::for_checkpoint(spec_.model) : Tokenizer::load(spec_.tokenizer));
  });
  return *codec_;
}

const Tokenizer& EngineBackend::tokenizer() const {
  tokens();
  return codec_->tokenizer();
}

std::vector<int32_t> EngineBackend::model_ids(std::span<const int32_t> ids) const {
  const int64_t v = config().vocab;
  std::vector<int32_t> out(ids.begin(), ids.end());
  for (int32_t& id : out) {
    if (id < v) continue;
    if (!spec_.fold_ids)
      throw UsageError(fmt::format("token id {} is outside the vocabulary of {} (0..{}); --map-ids folds ids for synthetic presets", id,
                                   config().name, v - 1));
    id = static_cast<int32_t>(id % v);
  }
  return out;
}

std::unique_ptr<Session> EngineBackend::new_session(const Variant& v, bool bf16_activations) const {
  const Numerics n = v.numerics == Numerics::kModelDefault ? numerics_ : resolve_numerics(config(), v.numerics);
  return engine_->new_session({v.attention, v.kv_format, bf16_activations, n});
}

Generation EngineBackend::generate(const GenerateRequest& q) {
  Generation g;
  GenSpec spec;
  try {
    if (q.chat) throw UsageError("the engine backend takes completion prompts, not chat messages");
    if (q.variant.numerics != Numerics::kModelDefault && resolve_numerics(config(), q.variant.numerics) != numerics_)
      throw UsageError(fmt::format("this engine backend generates with {} numerics only", numerics_name(numerics_)));
    if (!q.prompt_ids.empty()) {
      spec.prompt = model_ids(q.prompt_ids);
    } else {
      const TokenCodec& codec = tokens();
      if (codec.bos_id()) spec.prompt.push_back(*codec.bos_id());
      for (int32_t id : codec.encode(q.prompt_text)) spec.prompt.push_back(id);
      spec.prompt = model_ids(spec.prompt);
    }
    spec.score = model_ids(q.score);
  } catch (const std::exception& e) {
    g.error = e.what();
    return g;
  }
  spec.max_tokens = q.max_tokens;
  spec.sampling = q.sampling;
  spec.ignore_eos = q.ignore_eos;
  spec.attention = q.variant.attention;
  spec.kv_format = q.variant.kv_format;
  spec.tap = q.tap;
  g.prompt_tokens = static_cast<int64_t>(spec.prompt.size());

  std::call_once(sched_once_, [&] {
    SchedulerOptions so;
    so.max_active = spec_.max_active;
    so.prefill_chunk = spec_.prefill_chunk;
    so.max_waiting = 1 << 20;
    so.session = {AttentionMode::kNative, KvFormat::kBf16, spec_.bf16_activations, numerics_};
    sched_ = std::make_unique<Scheduler>(*engine_, so);
  });
  const auto r = sched_->submit(std::move(spec));
  if (!r) {
    g.error = "the engine backend is shutting down";
    return g;
  }
  g.sent = r->submitted;

  // Follow the tokens as the scheduler publishes them; stop strings and `done` end the request here.
  const bool watch_text = q.done || !q.stop.empty();
  const int32_t eos = static_cast<int32_t>(config().eos_token_id);
  std::vector<Clock::time_point> times;
  std::string finish;
  for (size_t seen = 0; finish.empty();) {
    r->wait_beyond(seen);
    std::vector<int32_t> fresh;
    bool finished = false;
    {
      std::lock_guard lk(r->mu);
      fresh.assign(r->tokens.begin() + static_cast<std::ptrdiff_t>(seen), r->tokens.end());
      times.insert(times.end(), r->token_times.begin() + static_cast<std::ptrdiff_t>(seen), r->token_times.end());
      seen = r->tokens.size();
      finished = r->finished;
      if (finished) finish = r->finish_reason;
    }
    // The EOS that ended a request is not part of the answer.
    if (finished && finish == "stop" && !q.ignore_eos && !fresh.empty() && fresh.back() == eos) {
      fresh.pop_back();
      times.pop_back();
    }
    // The answer ends at the first token that completes a stop string or `done`, however far the
    // scheduler got before this thread looked: the result never depends on timing.
    for (int32_t t : fresh) {
      g.ids.push_back(t);
      if (!watch_text) continue;
      g.text = tokens().decode(g.ids);
      bool hit = false;
      if (const size_t at = first_stop(g.text, q.stop); at != std::string::npos) g.text.resize(at), hit = true;
      else hit = q.done && q.done(g.text);
      if (hit) {
        finish = "stop";
        if (!finished) r->stop_requested = true;
        times.resize(g.ids.size());
        break;
      }
    }
  }
  if (!watch_text && !g.ids.empty()) g.text = tokens().decode(g.ids);
  g.finish_reason = finish;
  if (finish == "error" || finish == "abort") {
    std::lock_guard lk(r->mu);
    g.error = fmt::format("generation ended with '{}': {}", finish, r->error);
  }
  {
    std::lock_guard lk(r->mu);
    g.scored = std::move(r->scored);
    g.decode_work = r->decode_work;
    g.kv_bytes = r->kv_bytes;
  }
  g.completion_tokens = g.chunks = static_cast<int64_t>(g.ids.size());
  if (!times.empty()) {
    g.ttft_s = seconds(g.sent, times.front());
    g.e2e_s = seconds(g.sent, times.back());
    for (size_t i = 1; i < times.size(); ++i) g.itl_s.push_back(seconds(times[i - 1], times[i]));
  }
  return g;
}

std::vector<std::vector<float>> EngineBackend::score(std::span<const int32_t> tokens_in, const Variant& v) {
  const auto ids = model_ids(tokens_in);
  auto session = new_session(v);
  std::vector<float> all;
  session->prefill(ids, &all);
  const size_t vocab = static_cast<size_t>(config().vocab);
  std::vector<std::vector<float>> rows;
  for (size_t i = 0; i < ids.size(); ++i) rows.emplace_back(all.begin() + i * vocab, all.begin() + (i + 1) * vocab);
  return rows;
}

Capabilities EngineBackend::capabilities() const {
  Capabilities c;
  c.logits = true;
  c.attention = {AttentionMode::kNative, AttentionMode::kDense};
  if (config().is_v4()) c.attention.push_back(AttentionMode::kWindow);
  c.kv_formats = {KvFormat::kBf16, KvFormat::kFp8};
  c.numerics = std::string(numerics_name(numerics_));
  c.vocab = config().vocab;
  c.max_context = config().max_position;
  return c;
}

nlohmann::json EngineBackend::identity() const {
  return {{"backend", "engine"}, {"model", spec_.model}, {"config", config().name}, {"numerics", numerics_name(numerics_)}};
}

}  // namespace v4b::evals
