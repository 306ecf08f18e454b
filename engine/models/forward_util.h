// Small helpers shared by the model forward passes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "common/errors.h"
#include "engine/core/qdq.h"
#include "engine/core/scratch.h"
#include "engine/kernels/cpu/matmul.h"
#include "engine/kv/kv_rows.h"
#include "engine/runtime/engine.h"

namespace v4b {

// Row `row` of a BF16 / F32 embedding table as FP32 (UsageError for other layouts).
void embedding_row(const WeightMatrix& embed, int64_t row, float* out);

// The whole matrix widened to FP32 [rows][cols] (FP8 blocks times their scale); for the few
// weights a model uses in another shape than y = x·Wᵀ (MLA's absorbed kv_b).
std::vector<float> dequantize(const WeightMatrix& w);

// A WeightMatrix view of FP32 / BF16 data [rows][cols] (the data must outlive it).
WeightMatrix f32_matrix(const float* data, int64_t rows, int64_t cols);
WeightMatrix bf16_matrix(const Bf16* data, int64_t rows, int64_t cols);

// Throws UsageError for a token id outside [0, vocab).
void check_tokens(std::span<const int32_t> tokens, int64_t vocab);

// Lightning-indexer selection (V4 §2.6, V3.2 DSA) for a chunk of queries: query i's score of key s
// is wscale · Σ_h head_w[i][h] · relu(q_ih · k_s) over the keys visible to it (the first
// visible[i]), and it keeps the top-k (ties to the lower row), listed in ascending row order. Keys
// are decoded a block at a time and scored for a group of queries in one product, so memory stays
// bounded.
// Counts each query's scoring as kIndexerScore work on ctx. exact_bf16: queries and keys are exact in
// BF16 (V4's FP4-quantised ones), so the products may run as BF16 dot products (matmul_bf16_exact).
// keys8: the same keys kept as 8-bit integers (V4), scored by index_scores_int8 where it can.
// bf16_scores (V4's official numerics, spec §7.1 / §7.7 h): each head's dot, its weighted term and
// the sum over heads rounded to BF16, and the picks listed in top-k order (descending score, ties
// to the lower row), the order the official attention reads them in.
std::vector<std::vector<int32_t>> index_select(const KernelContext& ctx, const KvRows& keys, const float* q, int64_t heads,
                                               const float* head_w, float wscale, std::span<const int64_t> visible,
                                               int64_t topk, bool exact_bf16, const IndexKeysInt8* keys8 = nullptr,
                                               bool bf16_scores = false);

// One session's part of a batched forward pass (Engine::step): its tokens are the pass's rows
// [row0, row0 + tokens.size()).
template <class SessionT>
struct Segment {
  SessionT* session = nullptr;
  std::span<const int32_t> tokens;
  int64_t row0 = 0;
  int64_t rows() const { return static_cast<int64_t>(tokens.size()); }
};

// What every family's session shares: weights, options, counters, and a copyable StateT (with
// `pos` and `logits` beside the caches) that snapshot and restore copy whole. SessionT (the derived
// session) implements kv_bytes and reset, calls reset() from its constructor, and has a static
// forward(std::span<const Segment<SessionT>>, std::vector<float>* all_logits): the batched pass
// behind both prefill (one segment) and Engine::step.
template <class WeightsT, class StateT, class SessionT>
class ModelSession : public Session {
 public:
  ModelSession(std::shared_ptr<const WeightsT> w, SessionOptions o, ThreadPool* pool, CpuIsa isa)
      : w_(std::move(w)), o_(o), ctx_{pool, &counters_, isa} {
    o_.numerics = resolve_numerics(m(), o.numerics);
    // Official GEMM operands are exact in BF16 (BF16 tensors, or E4M3 times a power of two).
    o_.bf16_activations = o.bf16_activations || official();
    ctx_.bf16_activations = o_.bf16_activations;
  }

  std::span<const float> prefill(std::span<const int32_t> tokens, std::vector<float>* all_logits) override {
    if (tokens.empty()) return s_.logits;
    check_tokens(tokens, m().vocab);
    const Segment<SessionT> seg{static_cast<SessionT*>(this), tokens, 0};
    SessionT::forward({&seg, 1}, all_logits);
    return s_.logits;
  }

  std::span<const float> logits() const override { return s_.logits; }
  int64_t position() const override { return s_.pos; }
  const OpCounters& counters() const override { return counters_; }
  void reset_counters() override { counters_.reset(); }
  std::unique_ptr<Snapshot> snapshot() const override { return std::make_unique<StateT>(s_); }
  void restore(const Snapshot& snap) override { s_ = dynamic_cast<const StateT&>(snap); }

  // For batched passes (ModelEngine::step, PassCounts, pass_logits).
  bool uses(const WeightsT* w) const { return w_.get() == w; }
  // The end of a pass: `rows` tokens were appended and `last` are the logits after the last one.
  void advance(int64_t rows, std::span<const float> last) {
    s_.logits.assign(last.begin(), last.end());
    s_.pos += rows;
  }
  // Sessions that may share a batched pass: the same attention mode and arithmetic.
  bool can_batch_with(const ModelSession& o) const {
    return o_.attention == o.o_.attention && o_.bf16_activations == o.o_.bf16_activations && o_.numerics == o.o_.numerics;
  }
  bool official() const { return o_.numerics == Numerics::kOfficial; }
  // Rounds x [n] to BF16 where the official code holds a BF16 tensor; nothing in fp32 sessions.
  void bf16(float* x, int64_t n) const {
    if (official()) round_bf16(x, n);
  }
  const KernelContext& kernel_context() const { return ctx_; }
  // Adds rows/total of `shared` (work a batched pass did once for all its sessions) to this session.
  void add_share(const OpCounters& shared, int64_t rows, int64_t total) {
    for (int c = 0; c < kNumFlopCategories; ++c) {
      const auto cat = static_cast<FlopCategory>(c);
      const OpCount n = shared.get(cat);
      if (n.calls > 0) counters_.add(cat, n.flops * rows / total, n.bytes * rows / total);
    }
  }

 protected:
  const ModelConfig& m() const { return w_->m; }

  std::shared_ptr<const WeightsT> w_;
  SessionOptions o_;
  OpCounters counters_;
  KernelContext ctx_;
  StateT s_;
};

// The kernel context a batched pass counts its shared work on: the session's own when there is
// one, else a private tally that the destructor splits among the sessions by their rows.
template <class SessionT>
class PassCounts {
 public:
  explicit PassCounts(std::span<const Segment<SessionT>> segs) : segs_(segs), ctx_(segs.front().session->kernel_context()) {
    if (segs.size() > 1) ctx_.counters = &shared_;
  }
  ~PassCounts() {
    if (segs_.size() < 2) return;
    int64_t total = 0;
    for (const auto& g : segs_) total += g.rows();
    for (const auto& g : segs_) g.session->add_share(shared_, g.rows(), total);
  }
  PassCounts(const PassCounts&) = delete;
  PassCounts& operator=(const PassCounts&) = delete;
  const KernelContext& ctx() const { return ctx_; }

 private:
  std::span<const Segment<SessionT>> segs_;
  OpCounters shared_;
  KernelContext ctx_;
};

// The rows of a pass that need logits: every row with `all` (one segment), else each segment's last.
template <class SessionT>
std::vector<int64_t> logit_rows(std::span<const Segment<SessionT>> segs, bool all) {
  std::vector<int64_t> rows;
  for (const auto& g : segs)
    for (int64_t i = all ? 0 : g.rows() - 1; i < g.rows(); ++i) rows.push_back(g.row0 + i);
  return rows;
}

// Moves rows[i] (ascending) of a row-major buffer of `width` floats per row to row i.
inline void keep_rows(float* buf, int64_t width, std::span<const int64_t> rows) {
  for (size_t i = 0; i < rows.size(); ++i)  // rows ascend, so row i never overwrites one still to move
    if (rows[i] != static_cast<int64_t>(i)) std::copy_n(buf + rows[i] * width, width, buf + i * width);
}

// A layer's query side: every row of the pass, or (last_rows_only, see PassRows) each segment's
// last row alone, in segment order, its input gathered from x [rows][width].
template <class SessionT>
class LayerQueries {
 public:
  LayerQueries(std::span<const Segment<SessionT>> segs, const float* x, int64_t width, bool last_rows_only)
      : segs_(segs), x_(x), last_only_(last_rows_only) {
    if (!last_only_) return;
    gathered_.resize(segs.size() * width);
    for (size_t k = 0; k < segs.size(); ++k)
      std::copy_n(x + (segs[k].row0 + segs[k].rows() - 1) * width, width, gathered_.data() + k * width);
    x_ = gathered_.data();
  }
  // How many rows query, and their inputs [count()][width].
  int64_t count() const {
    return last_only_ ? static_cast<int64_t>(segs_.size()) : segs_.back().row0 + segs_.back().rows();
  }
  const float* x() const { return x_; }
  // Segment k queries on its rows [first(k), rows()), which are rows row(k).. of the queries.
  int64_t first(size_t k) const { return last_only_ ? segs_[k].rows() - 1 : 0; }
  int64_t row(size_t k) const { return last_only_ ? static_cast<int64_t>(k) : segs_[k].row0; }

 private:
  std::span<const Segment<SessionT>> segs_;
  const float* x_;
  bool last_only_;
  std::vector<float> gathered_;
};

// The LM head over a pass's final normed rows h [logit_rows][d]: each segment's session advances
// with its last row's logits; with `all`, every row's go there too.
template <class SessionT>
void pass_logits(const KernelContext& ctx, const WeightMatrix& head, const float* h, std::span<const Segment<SessionT>> segs,
                 std::vector<float>* all) {
  const int64_t vocab = head.rows, n = all ? segs.front().rows() : static_cast<int64_t>(segs.size());
  std::vector<float> logits(n * vocab);
  matmul(ctx, FlopCategory::kWeightGemm, h, n, head, logits.data());
  for (size_t k = 0; k < segs.size(); ++k) {
    const int64_t last = all ? n - 1 : static_cast<int64_t>(k);
    segs[k].session->advance(segs[k].rows(), std::span<const float>(logits.data() + last * vocab, vocab));
  }
  if (all) *all = std::move(logits);
}

// What every family's batched pass holds: its segments, the weights, the kernel context its shared
// work is counted on (PassCounts), and every segment's tokens in row order.
// How the official numerics run a linear layer (spec §7.7 d); fp32 sessions take every product as it is.
enum class Linear {
  kStored,  // by the weight's layout: FP8 / FP4 meet act_quant'd inputs, FP8 / FP4 / BF16 give BF16 results
  kBf16,    // a BF16 einsum on the dequantised weight (V4's wo_a, V3.2's absorbed W_UK / W_UV): BF16 result
  kF32,     // an FP32 result (compressors, routers, mHC, heads, V3.2's indexer head weights)
};

template <class SessionT, class WeightsT>
struct PassRows {
  PassRows(std::span<const Segment<SessionT>> segs, const WeightsT& w, const KernelContext& ctx)
      : segs_(segs), w_(w), m_(w.m), ctx_(ctx), official_(segs.front().session->official()) {
    for (const auto& g : segs) tokens_.insert(tokens_.end(), g.tokens.begin(), g.tokens.end());
    T_ = static_cast<int64_t>(tokens_.size());
  }
  // The pass's last layer, when it is to give logits on each segment's last row alone (no
  // all_logits, and some segment has more rows): every row writes its cache entries there, but
  // only those rows query (LayerQueries), and the rest of the pass runs on them (keep_rows).
  bool last_rows_only(size_t layer, int64_t n_logit_rows) const { return layer + 1 == w_.layers.size() && n_logit_rows < T_; }
  // From here on the pass holds only `rows` (ascending; its buffers moved there by keep_rows).
  void keep_token_rows(std::span<const int64_t> rows) {
    for (size_t i = 0; i < rows.size(); ++i) tokens_[i] = tokens_[rows[i]];
    tokens_.resize(rows.size());
    T_ = static_cast<int64_t>(rows.size());
  }
  // The product y = x·Wᵀ as a MatmulJob, marked for the official numerics by `kind`.
  MatmulJob job(FlopCategory c, const float* x, int64_t m, const WeightMatrix& w, float* y, Linear kind = Linear::kStored) const {
    MatmulJob j{c, x, m, &w, y};
    if (!official_ || kind == Linear::kF32 || w.layout == WeightLayout::kF32) return j;
    j.act_quant = kind == Linear::kStored && w.layout != WeightLayout::kBf16;
    j.bf16_out = true;
    return j;
  }
  // Rounds x [n] to BF16 where the official code holds a BF16 tensor; nothing in fp32 passes.
  void bf16(float* x, int64_t n) const {
    if (official_) round_bf16(x, n);
  }

  std::span<const Segment<SessionT>> segs_;
  const WeightsT& w_;
  const ModelConfig& m_;
  const KernelContext& ctx_;
  const bool official_;  // the segments' sessions share their numerics (ModelEngine::step checks)
  std::vector<int32_t> tokens_;
  int64_t T_ = 0;
};

// The Engine of one model family: shared read-only weights, one SessionT (a ModelSession) per
// new_session(); WeightsT has a ModelConfig `m`; SessionT is constructed from (weights, options,
// pool, isa).
template <class SessionT, class WeightsT>
class ModelEngine final : public Engine {
 public:
  ModelEngine(std::shared_ptr<const WeightsT> w, EngineOptions o) : w_(std::move(w)), o_(o) {}
  const ModelConfig& config() const override { return w_->m; }
  std::unique_ptr<Session> new_session(const SessionOptions& opts) const override {
    return std::make_unique<SessionT>(w_, opts, o_.pool, o_.isa);
  }

  void step(std::span<const StepItem> items) const override {
    std::vector<Segment<SessionT>> segs;
    for (const StepItem& it : items) {
      auto* s = dynamic_cast<SessionT*>(it.session);
      if (s == nullptr || !s->uses(w_.get())) throw UsageError("Engine::step: a session made by another engine");
      for (const auto& g : segs)
        if (g.session == s) throw UsageError("Engine::step: a session appears twice in one step");
      if (!segs.empty() && !s->can_batch_with(*segs.front().session))
        throw UsageError("Engine::step: the sessions of one step must share an attention mode, bf16_activations and numerics");
      check_tokens(it.tokens, w_->m.vocab);
      segs.push_back({s, it.tokens, 0});
    }
    std::erase_if(segs, [](const auto& g) { return g.tokens.empty(); });
    if (segs.empty()) return;
    for (int64_t row0 = 0; auto& g : segs) g.row0 = std::exchange(row0, row0 + g.rows());
    SessionT::forward(segs, nullptr);
  }

 private:
  std::shared_ptr<const WeightsT> w_;
  EngineOptions o_;
};

}  // namespace v4b
