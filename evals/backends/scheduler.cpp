#include "evals/backends/scheduler.h"

#include <algorithm>
#include <map>

namespace v4b::evals {

size_t GenRequest::wait_beyond(size_t have) {
  std::unique_lock lk(mu);
  changed.wait(lk, [&] { return finished || tokens.size() > have; });
  return tokens.size();
}

void GenRequest::wait_finished() {
  std::unique_lock lk(mu);
  changed.wait(lk, [&] { return finished; });
}

Scheduler::Scheduler(const Engine& engine, SchedulerOptions o) : engine_(engine), o_(o) {
  o_.max_active = std::max(1, o_.max_active);
  o_.prefill_chunk = std::max<int64_t>(1, o_.prefill_chunk);
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { drain(std::chrono::milliseconds(0)); }

std::shared_ptr<GenRequest> Scheduler::submit(GenSpec spec) {
  std::vector<GenSpec> one;
  one.push_back(std::move(spec));
  auto r = submit_all(std::move(one));
  return r.empty() ? nullptr : r.front();
}

std::vector<std::shared_ptr<GenRequest>> Scheduler::submit_all(std::vector<GenSpec> specs) {
  std::vector<std::shared_ptr<GenRequest>> out;
  const auto now = Clock::now();
  for (auto& spec : specs) {
    out.push_back(std::make_shared<GenRequest>());
    out.back()->spec = std::move(spec);
    out.back()->submitted = now;
  }
  {
    std::lock_guard lk(mu_);
    if (!accepting_ || waiting_.size() + out.size() > static_cast<size_t>(o_.max_waiting)) return {};
    waiting_.insert(waiting_.end(), out.begin(), out.end());
  }
  wake_.notify_one();
  return out;
}

void Scheduler::drain(std::chrono::milliseconds timeout) {
  {
    std::unique_lock lk(mu_);
    accepting_ = false;
    idle_.wait_for(lk, timeout, [&] { return waiting_.empty() && n_active_ == 0; });
    stop_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lk(mu_);
  return {n_active_, static_cast<int64_t>(waiting_.size()), completed_, iterations_, cancelled_};
}

void Scheduler::finish(GenRequest& r, const std::string& reason, const std::string& error) {
  {
    std::lock_guard lk(r.mu);
    r.finished = true;
    r.finish_reason = reason;
    r.error = error;
  }
  r.changed.notify_all();
}

void Scheduler::loop() {
  for (;;) {
    std::vector<std::shared_ptr<GenRequest>> admitted;
    {
      std::unique_lock lk(mu_);
      wake_.wait(lk, [&] { return stop_ || !waiting_.empty() || !active_.empty(); });
      if (stop_) {
        for (auto& r : waiting_) finish(*r, "abort", "the server is shutting down");
        waiting_.clear();
        break;
      }
      while (static_cast<int>(active_.size() + admitted.size()) < o_.max_active && !waiting_.empty()) {
        admitted.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      }
      n_active_ = static_cast<int64_t>(active_.size() + admitted.size());
    }
    for (auto& r : admitted) {
      try {
        SessionOptions so = o_.session;
        if (r->spec.attention) so.attention = *r->spec.attention;
        if (r->spec.kv_format) so.kv_format = *r->spec.kv_format;
        active_.push_back({r, engine_.new_session(so), 0, Sampler(r->spec.sampling), so.attention});
      } catch (const std::exception& e) {
        finish(*r, "error", e.what());
        ++completed_;
      }
    }
    step_all();
    ++iterations_;
    {
      std::lock_guard lk(mu_);
      n_active_ = static_cast<int64_t>(active_.size());
      if (waiting_.empty() && active_.empty()) idle_.notify_all();
    }
  }
  for (auto& a : active_) finish(*a.req, "abort", "the server is shutting down");
  active_.clear();
  n_active_ = 0;
  idle_.notify_all();
}

void Scheduler::step_all() {
  // Requests that cannot take part, or whose reader asked them to stop, are finished first, so one
  // bad request never fails a batch.
  const auto outside = [&](int32_t t) { return t < 0 || t >= engine_.config().vocab; };
  std::erase_if(active_, [&](Active& a) {
    GenRequest& r = *a.req;
    const char* problem = nullptr;
    if (r.cancelled) {
      ++cancelled_;
      problem = "cancelled";
    } else if (r.spec.prompt.empty() || r.spec.max_tokens < 0) {
      problem = "a request needs at least one prompt token and max_tokens >= 0";
    } else if (std::ranges::any_of(r.spec.prompt, outside) || std::ranges::any_of(r.spec.score, outside)) {
      problem = "a prompt token id is outside the model's vocabulary";
    }
    if (problem == nullptr && !r.stop_requested) return false;
    if (problem == nullptr) finish(r, "stop");
    else finish(r, r.cancelled ? "abort" : "error", problem);
    ++completed_;
    return true;
  });
  if (active_.empty()) return;

  // One forward pass: a token for every decoding request, and prompt chunks within the budget of
  // prefill_chunk tokens (first come, first served), so long prompts never stall the decodes.
  std::vector<StepItem> items;
  std::vector<Active*> stepped, solo;  // solo: prompts tapped for every row, prefilled on their own
  int64_t budget = o_.prefill_chunk;
  for (Active& a : active_) {
    const auto& prompt = a.req->spec.prompt;
    const auto n_prompt = static_cast<int64_t>(prompt.size());
    if (a.prefilled < n_prompt) {
      const int64_t n = std::min(budget, n_prompt - a.prefilled);
      if (n == 0) continue;
      budget -= n;
      const auto chunk = std::span<const int32_t>(prompt).subspan(a.prefilled, n);
      a.prefilled += n;
      if (a.req->spec.tap.prompt && a.req->spec.tap.fn) {
        try {
          std::vector<float> rows;
          a.session->prefill(chunk, &rows);
          // The prompt's last row goes with the first token drawn from it (publish).
          if (a.prefilled == n_prompt) rows.resize(rows.size() - a.session->logits().size());
          a.req->spec.tap.fn(rows, -1);
        } catch (const std::exception& e) {
          a.failed = e.what();
        }
        solo.push_back(&a);
        continue;
      }
      items.push_back({a.session.get(), chunk});
    } else {
      a.last = a.req->tokens.back();  // only this thread appends to tokens
      items.push_back({a.session.get(), std::span<const int32_t>(&a.last, 1)});
    }
    stepped.push_back(&a);
  }
  // Engine::step takes sessions of one attention mode: one pass per mode present.
  std::map<AttentionMode, std::pair<std::vector<StepItem>, std::vector<Active*>>> by_mode;
  for (size_t i = 0; i < items.size(); ++i) {
    auto& [group, members] = by_mode[stepped[i]->mode];
    group.push_back(items[i]);
    members.push_back(stepped[i]);
  }
  for (auto& [mode, pass] : by_mode) {
    try {
      engine_.step(pass.first);
    } catch (const std::exception& e) {
      for (Active* a : pass.second) a->failed = e.what();
    }
  }
  stepped.insert(stepped.end(), solo.begin(), solo.end());
  for (Active* a : stepped) {
    const bool prompt_in = a->prefilled == static_cast<int64_t>(a->req->spec.prompt.size());
    if (a->failed.empty() && prompt_in && a->req->tokens.empty() && !a->req->spec.score.empty()) score(*a);
    if (a->failed.empty() && prompt_in) publish(*a);
    else if (!a->failed.empty()) finish(*a->req, "error", a->failed);
  }
  std::erase_if(active_, [&](const Active& a) {
    if (!a.failed.empty() || a.req->finished) ++completed_;  // only this thread finishes active requests
    return !a.failed.empty() || a.req->finished;
  });
}

void Scheduler::score(Active& a) {
  GenRequest& r = *a.req;
  try {
    std::vector<std::vector<float>> rows;
    rows.reserve(r.spec.score.size());
    const auto first = a.session->logits();
    rows.emplace_back(first.begin(), first.end());
    if (r.spec.score.size() > 1) {
      // The logits after the last scored token are never needed: score[0..n-2] are forced.
      const auto snap = a.session->snapshot();
      std::vector<float> all;
      a.session->prefill(std::span<const int32_t>(r.spec.score).first(r.spec.score.size() - 1), &all);
      const size_t v = first.size();
      for (size_t i = 0; i + 1 < r.spec.score.size(); ++i) rows.emplace_back(all.begin() + i * v, all.begin() + (i + 1) * v);
      a.session->restore(*snap);
    }
    std::lock_guard lk(r.mu);
    r.scored = std::move(rows);
  } catch (const std::exception& e) {
    a.failed = e.what();
  }
}

void Scheduler::publish(Active& a) {
  GenRequest& r = *a.req;
  const auto logits = a.session->logits();
  const bool draw = !a.final_step && r.spec.max_tokens > 0;  // max_tokens 0: the prompt's logits only
  const int32_t t = draw ? a.sampler.sample(logits) : -1;
  if (r.tokens.empty()) a.session->reset_counters();  // decode work is counted from the first token on
  if (r.spec.tap.fn) r.spec.tap.fn(logits, t);
  const char* reason = nullptr;
  if (!draw) reason = "length";
  else if (!r.spec.ignore_eos && t == engine_.config().eos_token_id) reason = "stop";
  else if (static_cast<int64_t>(r.tokens.size()) + 1 >= r.spec.max_tokens) reason = "length";
  // LogitsTap::final: the last token is fed back once more, for its row, before the request ends.
  if (t >= 0 && reason && std::string_view(reason) == "length" && r.spec.tap.final && r.spec.tap.fn) {
    a.final_step = true;
    reason = nullptr;
  }
  {
    // The last token and the finish are published together, so a reader never sees one without the other.
    std::lock_guard lk(r.mu);
    if (t >= 0) {
      r.tokens.push_back(t);
      r.token_times.push_back(Clock::now());
    }
    // The work is that of the steps that drew tokens (not the final tap's extra step).
    if ((reason && !a.final_step) || (!reason && a.final_step && t >= 0)) r.decode_work = a.session->counters().total();
    if (reason) {
      r.kv_bytes = a.session->kv_bytes();
      r.finished = true;
      r.finish_reason = reason;
    }
  }
  r.changed.notify_all();
}

}  // namespace v4b::evals
