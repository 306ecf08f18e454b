// Continuous batching on the embedded engine: one scheduler thread owns every active request's
// Session and, each iteration, advances all of them in one Engine::step — a decoded token for each
// request past its prompt, plus prompt chunks within a budget of prefill_chunk tokens — so new
// requests join and finished ones leave between iterations. The step's matmuls run over every
// request's rows at once, so N decodes read the weights about once; attention stays per request.
// The server (evals/serve) and the engine backend (engine_backend.h), through which every suite
// decodes, share this class: it is the one decode loop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/counters.h"
#include "engine/models/cost_model.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/sampler.h"

namespace v4b::evals {

using Clock = std::chrono::steady_clock;

// A request's logits as its timeline produces them, handed to `fn` on the scheduler thread (what
// generate's --logprobs and --dump-logits read). In order: the rows after each prompt token but the
// last (with `prompt` only; the prompt is then prefilled on its own, outside the shared pass), one
// row per generated token with the token drawn from it, and with `final` the row after the last
// generated token (one more step), drawn from by nobody (-1). With max_tokens 0 the prompt's last
// row comes alone, drawn from by nobody.
struct LogitsTap {
  bool prompt = false, final = false;
  std::function<void(std::span<const float> rows, int32_t drawn)> fn;
};

struct GenSpec {
  std::vector<int32_t> prompt;  // token ids, each < the model's vocabulary
  int64_t max_tokens = 16;      // 0: the prompt only (its logits, through a LogitsTap)
  SamplerOptions sampling;
  bool ignore_eos = false;      // keep generating past the model's EOS token
  // The session's attention mode and KV format; unset: the scheduler's. Requests of different
  // attention modes are stepped in separate forward passes.
  std::optional<AttentionMode> attention;
  std::optional<KvFormat> kv_format;
  // Teacher-forced scoring: once the prompt is in, GenRequest::scored gets score.size() rows, row i
  // the logits before score[i] (after the prompt and score[0..i-1]); generation continues from the prompt.
  std::vector<int32_t> score;
  LogitsTap tap;
};

// One request's progress. The scheduler appends tokens; readers wait on `changed` under `mu`.
struct GenRequest {
  GenSpec spec;
  Clock::time_point submitted;

  std::mutex mu;
  std::condition_variable changed;
  std::vector<int32_t> tokens;                // generated so far
  std::vector<Clock::time_point> token_times; // when each was sampled (exact per token)
  bool finished = false;
  std::string finish_reason;  // "length", "stop" (EOS), "abort" (cancelled or shut down), "error"
  std::string error;
  std::vector<std::vector<float>> scored;     // GenSpec::score's rows, complete before the first token
  // Set when generation ends by length or EOS: the work of this request's decode steps (its share of
  // each shared pass, after the prompt) and the KV cache it held at the end.
  OpCount decode_work;
  KvBytes kv_bytes;

  // Set by a reader that has gone (client disconnected): the scheduler drops the session.
  std::atomic<bool> cancelled{false};
  // Set by a reader that found a stop string: the scheduler ends the request as "stop".
  std::atomic<bool> stop_requested{false};

  // Blocks until at least `have + 1` tokens exist or the request finished; returns the token count.
  size_t wait_beyond(size_t have);
  // Blocks until finished.
  void wait_finished();
};

struct SchedulerOptions {
  int max_active = 16;       // sessions stepped per iteration; more requests wait in FIFO order
  int max_waiting = 1024;    // beyond this, submit() refuses (the server answers 503)
  int64_t prefill_chunk = 256;  // prompt tokens per step (all requests together), so long prompts do not stall decodes
  SessionOptions session;
};

struct SchedulerStats {
  int64_t active = 0, waiting = 0, completed = 0, iterations = 0;
  int64_t cancelled = 0;  // dropped because their reader went away
};

class Scheduler {
 public:
  Scheduler(const Engine& engine, SchedulerOptions o);
  ~Scheduler();  // aborts whatever is left, joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request; nullptr when the waiting queue is full or the scheduler is stopping.
  std::shared_ptr<GenRequest> submit(GenSpec spec);
  // Queues several at once, so the loop admits them in the same iteration (up to max_active);
  // empty when they do not all fit or the scheduler is stopping.
  std::vector<std::shared_ptr<GenRequest>> submit_all(std::vector<GenSpec> specs);
  // Waits up to `timeout` for every queued and active request to finish, then aborts the rest and
  // stops accepting. Idempotent.
  void drain(std::chrono::milliseconds timeout);
  SchedulerStats stats() const;
  const ModelConfig& config() const { return engine_.config(); }

 private:
  struct Active {
    std::shared_ptr<GenRequest> req;
    std::unique_ptr<Session> session;
    int64_t prefilled = 0;
    Sampler sampler;
    AttentionMode mode = AttentionMode::kNative;  // the session's: one Engine::step per mode
    bool final_step = false;  // LogitsTap::final: the last token is being fed back for its row
    int32_t last = 0;    // the token fed to this iteration's decode
    std::string failed;  // the step's error, when it threw
  };
  void loop();
  void step_all();          // one Engine::step for the active requests; drops the finished ones
  void publish(Active& a);  // samples the next token from the session's logits
  void score(Active& a);    // GenSpec::score, before the first token
  static void finish(GenRequest& r, const std::string& reason, const std::string& error = "");

  const Engine& engine_;
  SchedulerOptions o_;
  mutable std::mutex mu_;  // guards waiting_, accepting_, stop_
  std::condition_variable wake_, idle_;
  std::deque<std::shared_ptr<GenRequest>> waiting_;
  bool accepting_ = true, stop_ = false;
  std::vector<Active> active_;  // the loop thread's own
  std::atomic<int64_t> n_active_{0}, completed_{0}, iterations_{0}, cancelled_{0};
  std::thread thread_;
};

}  // namespace v4b::evals
