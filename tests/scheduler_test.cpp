// The serving scheduler batches: concurrent requests advance together, one Engine::step per
// iteration, and each gets the tokens it gets when served alone; a bad request fails alone.
#include <gtest/gtest.h>

#include "engine/runtime/engine.h"
#include "engine/runtime/sampler.h"
#include "evals/backends/scheduler.h"
#include "tests/engine_checks.h"

namespace v4b::evals {
namespace {

// Greedy continuation of `prompt` by one session on its own.
std::vector<int32_t> greedy_alone(const Engine& engine, const std::vector<int32_t>& prompt, int64_t n) {
  auto s = engine.new_session();
  Sampler greedy({});
  std::vector<int32_t> out = {greedy.sample(s->prefill(prompt))};
  while (static_cast<int64_t>(out.size()) < n) out.push_back(greedy.sample(s->decode(out.back())));
  return out;
}

TEST(Scheduler, ConcurrentRequestsShareStepsAndMatchTheirSoloTokens) {
  auto engine = Engine::open("v4-tiny");
  const int64_t vocab = engine->config().vocab, n_gen = 12;
  const std::vector<int64_t> prompt_lens = {3, 10, 40, 150};
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < prompt_lens.size(); ++i) prompts.push_back(test::tokens(prompt_lens[i], 21 + static_cast<uint32_t>(i), vocab));

  Scheduler sched(*engine, {.max_active = 8, .max_waiting = 16, .prefill_chunk = 64, .session = {}});
  // Submitted together, so the loop admits all five in one iteration however the threads are
  // scheduled. A prompt id outside the vocabulary fails that request only.
  std::vector<GenSpec> specs;
  for (const auto& p : prompts) specs.push_back({.prompt = p, .max_tokens = n_gen, .sampling = {}, .ignore_eos = true});
  specs.push_back({.prompt = {1, static_cast<int32_t>(vocab)}, .max_tokens = 4, .sampling = {}, .ignore_eos = true});
  std::vector<std::shared_ptr<GenRequest>> reqs = sched.submit_all(std::move(specs));
  ASSERT_EQ(reqs.size(), 5u);
  const auto bad = reqs.back();
  reqs.pop_back();
  for (auto& r : reqs) r->wait_finished();
  bad->wait_finished();

  EXPECT_EQ(bad->finish_reason, "error");
  EXPECT_TRUE(bad->tokens.empty());
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(reqs[i]->finish_reason, "length");
    EXPECT_EQ(reqs[i]->tokens, greedy_alone(*engine, prompts[i], n_gen)) << "request " << i;
  }
  // Stepped one at a time, the four would need 4 x 12 decode iterations plus their prompt chunks;
  // together the 203 prompt tokens take 4 chunks of 64 and the decodes overlap.
  const SchedulerStats st = sched.stats();
  EXPECT_EQ(st.completed, 5);
  EXPECT_LE(st.iterations, n_gen + 4 + 2);
}

}  // namespace
}  // namespace v4b::evals
