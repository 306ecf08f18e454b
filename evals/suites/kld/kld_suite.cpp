#include "evals/suites/kld/kld_suite.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/units.h"
#include "engine/io/files.h"
#include "engine/io/tokenizer.h"
#include "engine/models/presets.h"
#include "engine/runtime/engine.h"
#include "evals/backends/engine_runs.h"
#include "evals/suites/kld/npy.h"
#include "evals/suites/numerics.h"

namespace v4b::evals {

namespace fs = std::filesystem;

namespace {

namespace names = schema::kld;

// The logits of one side, a block of positions at a time.
class LogitStream {
 public:
  LogitStream(const LogitSide& side, EngineRuns& engines) {
    if (side.is_file()) {
      file_ = std::make_unique<NpyReader>(side.source);
      vocab_ = file_->cols();
      return;
    }
    EngineBackend& engine = engines.backend(side.source);
    vocab_ = engine.config().vocab;
    const Numerics numerics = side.numerics.empty() ? Numerics::kModelDefault : parse_numerics(side.numerics);
    session_ = engine.new_session({parse_attention_mode(side.attention), parse_kv_format(side.kv_format), numerics});
  }
  int64_t vocab() const { return vocab_; }
  const NpyReader* file() const { return file_.get(); }
  // The logits after each of `tokens` (n of them; tokens may be empty for a file).
  void next(std::span<const int32_t> tokens, int64_t n, std::vector<float>& rows) {
    if (file_) {
      rows.resize(n * vocab_);
      file_->read(rows);
    } else {
      session_->prefill(tokens, &rows);
    }
  }

 private:
  std::unique_ptr<NpyReader> file_;
  std::unique_ptr<Session> session_;
  int64_t vocab_ = 0;
};

fs::path haystack_path(const std::string& name) {
  const fs::path dir = datasets_dir() / "haystack";
  const fs::path p = dir / (name.ends_with(".txt") ? name : name + ".txt");
  if (fs::exists(p)) return p;
  std::vector<std::string> known;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".txt") known.push_back(e.path().stem().string());
  std::sort(known.begin(), known.end());
  throw UsageError(fmt::format("unknown haystack '{}': expected one of {}", name, fmt::join(known, ", ")));
}

}  // namespace

bool LogitSide::is_file() const { return is_logits_file(source); }

std::string LogitSide::label() const {
  if (is_file()) return fs::path(source).filename().string();
  return fmt::format("{}/{}/{}", source, attention, kv_format) + (numerics.empty() ? "" : "/" + numerics);
}

KldResult run_kld(const KldRequest& r, const std::function<void(int64_t, int64_t)>& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  EngineRuns engines(r.seed);
  LogitStream base(r.base, engines);
  std::vector<std::unique_ptr<LogitStream>> cands;
  for (const LogitSide& c : r.cands) {
    cands.push_back(std::make_unique<LogitStream>(c, engines));
    if (base.vocab() != cands.back()->vocab())
      throw UsageError(fmt::format("mismatched vocabularies: base {} has {} logits per position, candidate {} has {}", r.base.label(),
                                   base.vocab(), c.label(), cands.back()->vocab()));
  }
  int64_t positions = static_cast<int64_t>(r.tokens.size());
  if (r.tokens.empty()) {
    if (!base.file()) throw UsageError("a kld run with an engine side needs a token sequence");
    positions = base.file()->rows();
    for (size_t k = 0; k < cands.size(); ++k) {
      if (!cands[k]->file()) throw UsageError("a kld run with an engine side needs a token sequence");
      if (cands[k]->file()->rows() != positions)
        throw UsageError(fmt::format("{} has {} positions but {} has {}", r.base.source, positions, r.cands[k].source,
                                     cands[k]->file()->rows()));
    }
  }
  auto check_rows = [&](const LogitStream& s, const LogitSide& side) {
    if (s.file() && s.file()->rows() < positions)
      throw UsageError(fmt::format("{} holds {} positions but the sequence has {}", side.source, s.file()->rows(), positions));
  };
  check_rows(base, r.base);
  for (size_t k = 0; k < cands.size(); ++k) check_rows(*cands[k], r.cands[k]);

  KldResult out;
  out.stats.assign(cands.size(), DivergenceStats(r.bin));
  out.positions = positions;
  const int64_t block = logits_block_rows(base.vocab()), V = base.vocab();
  std::vector<float> br, cr;
  for (int64_t p0 = 0; p0 < positions; p0 += block) {
    const int64_t n = std::min(block, positions - p0);
    std::span<const int32_t> toks;
    if (!r.tokens.empty()) toks = std::span<const int32_t>(r.tokens).subspan(p0, n);
    base.next(toks, n, br);
    for (size_t k = 0; k < cands.size(); ++k) {
      cands[k]->next(toks, n, cr);
      for (int64_t i = 0; i < n; ++i) {
        if (p0 + i < r.score_from) continue;
        out.stats[k].add(p0 + i,
                         compare_position(std::span<const float>(br).subspan(i * V, V), std::span<const float>(cr).subspan(i * V, V)));
      }
    }
    if (progress) progress(p0 + n, positions);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::vector<int32_t> kld_tokens(const KldParams& p, int64_t vocab, int64_t* folded) {
  const int64_t limit = p.tokens;
  std::vector<int32_t> ids;
  if (!p.ids.empty()) {
    for (int64_t v : parse_size_list(p.ids, "token id")) ids.push_back(static_cast<int32_t>(v));
  } else {
    const std::string text = !p.text.empty() ? read_file_bytes(p.text, "--text file") : read_file_bytes(haystack_path(p.haystack), "haystack");
    // A checkpoint directory brings its own tokenizer; presets use the DeepSeek one.
    const Tokenizer tok = Tokenizer::for_checkpoint(p.base);
    // Tokens average well over two bytes: encode only the prefix the limit can need.
    const size_t bytes = std::min(text.size(), static_cast<size_t>(limit) * 16);
    ids = tok.encode(std::string_view(text).substr(0, bytes), /*add_bos=*/true);
  }
  if (static_cast<int64_t>(ids.size()) > limit) ids.resize(limit);
  int64_t n_folded = 0;
  for (int32_t& id : ids) {
    if (id < 0) throw UsageError(fmt::format("token id {} is negative", id));
    if (id >= vocab) id = static_cast<int32_t>(id % vocab), ++n_folded;
  }
  if (folded) *folded = n_folded;
  return ids;
}

std::string KldSuite::summary() const { return "logit fidelity: KL divergence, top-1 agreement and Δp of a candidate against a base"; }

std::string KldSuite::description() const {
  return R"(Compares a candidate with a base over one token sequence, position by position, streaming a
block of positions at a time (memory stays O(block x vocab) at any length). Each side is an engine
configuration (model + --*-attention + --*-kv-format + --*-numerics) or a logits .npy [positions, vocab]
written by `v4bench generate --dump-logits` or another tool. One case per candidate attention x KV
format x numerics. Numerics (official or fp32; default official for DeepSeek-V4 checkpoints, fp32
otherwise) are resolved per side and stored: base_numerics, cand_numerics_list, and cand_numerics
per case, so `--base-numerics fp32 --cand-numerics official` measures what official numerics change.

Metrics per case (over positions >= --score-from):
  kld_mean, kld_stderr, kld_max, kld_p99_9, kld_p99, kld_p95, kld_p90, kld_p50, kld_p10, kld_p1
      KL(base || candidate) in nats, percentiles by linear interpolation
  top1_agreement, top1_stderr   share of positions whose argmax agrees, with its binomial stderr
  dp_mean, dp_rms, dp_p99, dp_p95, dp_p50, dp_p5, dp_p1
      Δp = p_candidate(t) - p_base(t) for t the base's most likely token
  positions, folded_ids, seconds
Samples: one per position bin (--bin): first, last, count, kld_mean, top1_agreement, dp_mean.

Text on a synthetic preset: presets with a vocabulary smaller than the tokenizer's fold larger ids
into range (id mod vocab); folded_ids counts them.

Example: v4bench run kld --base v4-small --base-attention dense --cand-attention native,dense
         --cand-kv-format bf16,fp8 --haystack moby_dick --tokens 8k
         v4bench kld --base v4-small --base-numerics fp32 --cand-numerics official --tokens 4k)";
}

void KldSuite::add_options(CLI::App& cmd) {
  // Checked in plan() rather than by CLI11, so `run kld --resume RUN` needs no flags.
  cmd.add_option("--base", base_, "base (required): a model (preset or checkpoint directory) or a logits FILE.npy");
  cmd.add_option("--base-attention", base_attention_, "base attention: native, dense or window")->capture_default_str();
  cmd.add_option("--base-kv-format", base_kv_, "base KV storage: bf16 or fp8")->capture_default_str();
  cmd.add_option("--base-numerics", base_numerics_, std::string("base: ") + kNumericsHelp);
  cmd.add_option("--cand", cand_, "candidate: a model or a logits FILE.npy (default: the base model)");
  cmd.add_option("--cand-attention", cand_attention_, "candidate attention modes, comma-separated")->capture_default_str();
  cmd.add_option("--cand-kv-format", cand_kv_, "candidate KV storage formats, comma-separated")->capture_default_str();
  cmd.add_option("--cand-numerics", cand_numerics_, "candidate numerics, comma-separated: official, fp32 (one case each; default: official for "
                 "DeepSeek-V4 checkpoints, fp32 otherwise)");
  auto* text = cmd.add_option("--text", text_, "token sequence: a UTF-8 text file");
  auto* hay = cmd.add_option("--haystack", haystack_, "token sequence: a dataset novel (datasets/haystack; default moby_dick)");
  auto* ids = cmd.add_option("--ids", ids_, "token sequence: comma-separated ids");
  text->excludes(hay)->excludes(ids);
  hay->excludes(ids);
  cmd.add_option("--tokens", tokens_, "at most this many tokens of the sequence (4k, 8k ...)")->capture_default_str();
  cmd.add_option("--score-from", score_from_, "skip the first N positions")->capture_default_str();
  cmd.add_option("--bin", bin_, "positions per bin of the drift table")->capture_default_str();
}

nlohmann::json KldSuite::params() const {
  KldParams p;
  p.base = base_;
  p.base_attention = base_attention_;
  p.base_kv_format = base_kv_;
  p.cand = cand_.empty() ? base_ : cand_;
  p.cand_attentions = parse_name_list(cand_attention_, "attention mode");
  p.cand_kv_formats = parse_name_list(cand_kv_, "KV format");
  p.tokens = parse_size(tokens_, "--tokens");
  p.score_from = score_from_;
  p.bin = bin_;
  // Numerics resolved per model side now, so the stored params name what ran; files have none.
  if (!base_.empty() && !is_logits_file(base_)) p.base_numerics = resolved_numerics_name(base_, base_numerics_, "--base-numerics");
  else if (!base_.empty() && !base_numerics_.empty()) throw UsageError(fmt::format("--base-numerics applies to a model, not a logits file ({})", base_));
  if (!p.cand.empty() && !is_logits_file(p.cand)) {
    std::vector<std::string> list;
    const auto requested = cand_numerics_.empty() ? std::vector<std::string>{""} : parse_name_list(cand_numerics_, "numerics");
    for (const auto& n : requested) {
      const std::string r = resolved_numerics_name(p.cand, n, "--cand-numerics");
      if (std::find(list.begin(), list.end(), r) != list.end()) throw UsageError(fmt::format("--cand-numerics lists '{}' twice", r));
      list.push_back(r);
    }
    p.cand_numerics_list = list;
  } else if (!p.cand.empty() && !cand_numerics_.empty()) {
    throw UsageError(fmt::format("--cand-numerics applies to a model, not a logits file ({})", p.cand));
  }
  if (!text_.empty()) p.text = text_;
  else if (!ids_.empty()) p.ids = ids_;
  else p.haystack = haystack_.empty() ? "moby_dick" : haystack_;
  return p.to_json();
}

std::string KldSuite::model_label(const nlohmann::json& params) const {
  const KldParams p = KldParams::from_json(params);
  return p.base + (p.cand == p.base ? "" : " vs " + p.cand);
}

std::vector<Cell> KldSuite::plan(const nlohmann::json& params, uint64_t seed, Backend*) const {
  const KldParams p = KldParams::from_json(params);
  p.validate();
  // Each side's vocabulary (and a file's positions) must fit the other side and the sequence.
  int64_t vocab = 0, file_rows = -1;
  std::string engine_src;
  for (const bool base_side : {true, false}) {
    const std::string& src = base_side ? p.base : p.cand;
    const char* flag = base_side ? "--base" : "--cand";
    int64_t v = 0;
    if (is_logits_file(src)) {
      if (!fs::exists(src)) throw UsageError(fmt::format("{}: no such file {}", flag, src));
      const NpyReader f(src);
      v = f.cols();
      if (file_rows >= 0 && f.rows() != file_rows) throw UsageError(fmt::format("the two logits files hold {} and {} positions", file_rows, f.rows()));
      file_rows = f.rows();
    } else {
      const ModelConfig m = resolve_model(src);
      if (!is_runnable(src)) throw UsageError(fmt::format("{}: {} is not runnable here (a synthetic preset or checkpoint directory)", flag, src));
      // Stored numerics are checked again: a resumed run's params come from the database.
      for (const auto& n : base_side ? std::vector<std::string>{p.base_side_numerics()} : p.cand_side_numerics())
        resolve_numerics_flag(m, src, n, base_side ? "--base-numerics" : "--cand-numerics");
      if (p.tokens > m.max_position)
        throw UsageError(fmt::format("--tokens {} is beyond the maximum context of {} ({})", p.tokens, src, m.max_position));
      // 'window' is V4's sliding window alone.
      for (const auto& att : base_side ? std::vector<std::string>{p.base_attention} : p.cand_attentions)
        if (parse_attention_mode(att) == AttentionMode::kWindow && !m.is_v4())
          throw UsageError(fmt::format("attention 'window' needs a DeepSeek-V4 model ({} is not)", src));
      v = m.vocab;
      engine_src = src;
    }
    if (vocab && v != vocab)
      throw UsageError(fmt::format("mismatched vocabularies: the base has {} logits per position, the candidate {} ({} vs {})", vocab, v, p.base, src));
    vocab = v;
  }
  if (!p.text.empty() && !fs::exists(p.text)) throw UsageError(fmt::format("--text: no such file {}", p.text));
  if (!p.haystack.empty()) haystack_path(p.haystack);
  if (!engine_src.empty() && file_rows >= 0) {
    const auto seq = static_cast<int64_t>(kld_tokens(p, vocab).size());
    if (file_rows < seq) throw UsageError(fmt::format("the logits file holds {} positions but the sequence has {}", file_rows, seq));
  }
  std::vector<Case> cases;
  for (const KldCase& c : kld_cases(p, seed)) cases.push_back({c.key(), c.to_json()});
  return {{std::move(cases), {}}};  // one pass of the base serves every candidate
}

std::vector<CaseOutput> KldSuite::execute(const Cell& cell, Backend*) {
  // One pass for every candidate of the run (each case's params carry the run's candidate lists).
  const KldCase first = KldCase::from_json(cell.cases.at(0).params);
  const KldParams& p = first.run;
  KldRequest r;
  r.base = {p.base, p.base_attention, p.base_kv_format, p.base_side_numerics()};
  std::vector<std::string> keys;
  for (const KldCase& c : kld_cases(p, first.seed)) {
    r.cands.push_back({p.cand, c.cand_attention, c.cand_kv_format, c.cand_numerics});
    keys.push_back(c.key());
  }
  r.score_from = p.score_from;
  r.bin = p.bin;
  r.seed = first.seed;
  int64_t folded = 0;
  std::string engine_model;
  for (const LogitSide* s : {&r.base, &r.cands.front()})
    if (!s->is_file()) engine_model = s->source;
  if (!engine_model.empty()) r.tokens = kld_tokens(p, resolve_model(engine_model).vocab, &folded);
  const KldResult res = run_kld(r);

  std::map<std::string, CaseOutput> by_key;
  for (size_t k = 0; k < keys.size(); ++k) {
    CaseOutput& out = by_key[keys[k]];
    for (const auto& [name, v] : res.stats[k].summary()) {
      const bool nats = name.starts_with("kld_") && name != "kld_stderr";
      out.metrics.push_back({name, v, nats ? "nats" : ""});
    }
    out.metrics.push_back({names::kFoldedIds, double(folded), ""});
    out.metrics.push_back({names::kSeconds, res.seconds, "s"});
    int64_t i = 0;
    for (const auto& b : res.stats[k].bins())
      out.samples.push_back({i++, {{"first", b.first}, {"last", b.last}, {"count", b.count}, {"kld_mean", b.kld_mean},
                                   {"top1_agreement", b.top1_agreement}, {"dp_mean", b.dp_mean}}});
  }
  std::vector<CaseOutput> out;
  for (const Case& c : cell.cases) out.push_back(std::move(by_key.at(c.key)));
  return out;
}

}  // namespace v4b::evals
