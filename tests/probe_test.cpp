// The v4-probe recall model (engine/synth/probe.h): its hand-built weights copy a needle's value
// after the needle's lead-in under dense attention at any distance, and the sliding window alone
// loses it once the needle is more than 128 tokens back.
#include <algorithm>
#include <random>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "common/errors.h"
#include "engine/models/presets.h"
#include "engine/runtime/engine.h"
#include "engine/synth/probe.h"
#include "engine/synth/synth.h"
#include "tests/test_util.h"

using namespace v4b;

namespace {

const Engine& load_probe(const std::string& preset) {
  static test::TempDir dir;
  static std::map<std::string, std::unique_ptr<Engine>> engines;
  auto& e = engines[preset];
  if (!e) {
    const std::string p = (dir.path / preset).string();
    write_synthetic_checkpoint(preset_config_json(preset), p, 0);
    e = Engine::load(p);
  }
  return *e;
}

int32_t argmax(std::span<const float> v) { return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin()); }

struct Haystack {
  std::vector<int32_t> prompt, value;
};

// `len` seeded random ids with a needle (4 lead-in ids + 5 value ids) starting at `needle_at`,
// ending with the lead-in again, as the probe NIAH template does.
Haystack haystack(int64_t len, int64_t needle_at, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(1000, 100000);
  Haystack h;
  std::vector<int32_t> lead(4);
  for (auto& t : lead) t = id(rng);
  h.value.resize(5);
  for (auto& t : h.value) t = id(rng);
  for (int64_t i = 0; i < needle_at; ++i) h.prompt.push_back(id(rng));
  h.prompt.insert(h.prompt.end(), lead.begin(), lead.end());
  h.prompt.insert(h.prompt.end(), h.value.begin(), h.value.end());
  while (static_cast<int64_t>(h.prompt.size()) < len - 4) h.prompt.push_back(id(rng));
  h.prompt.insert(h.prompt.end(), lead.begin(), lead.end());
  return h;
}

// Greedy continuation of the prompt, as many tokens as the value has.
std::vector<int32_t> continuation(AttentionMode mode, const Haystack& h, const std::string& preset = "v4-probe") {
  auto s = load_probe(preset).new_session({mode, KvFormat::kBf16});
  std::vector<int32_t> out;
  int32_t next = argmax(s->prefill(h.prompt));
  for (size_t i = 0; i < h.value.size(); ++i) {
    out.push_back(next);
    next = argmax(s->decode(next));
  }
  return out;
}

}  // namespace

TEST(ProbeModel, DenseAttentionCopiesTheNeedleValueAtAnyDepth) {
  for (int64_t at : {0, 300, 700, 1180}) {
    const Haystack h = haystack(1200, at, static_cast<uint32_t>(at + 1));
    EXPECT_EQ(continuation(AttentionMode::kDense, h), h.value) << "needle at " << at;
  }
}

TEST(ProbeModel, GqaProbeCopiesTheNeedleValueAtAnyDepth) {
  for (int64_t at : {0, 600, 1180}) {
    const Haystack h = haystack(1200, at, static_cast<uint32_t>(at + 2));
    EXPECT_EQ(continuation(AttentionMode::kDense, h, "gqa-probe"), h.value) << "needle at " << at;
  }
}

TEST(ProbeModel, WindowRecallsOnlyWithinItsWindow) {
  const Haystack near = haystack(600, 560, 5);  // needle ~40 tokens back: inside the 128-token window
  EXPECT_EQ(continuation(AttentionMode::kWindow, near), near.value);
  const Haystack far = haystack(600, 100, 6);  // ~500 tokens back
  const auto got = continuation(AttentionMode::kWindow, far);
  EXPECT_NE(got.front(), far.value.front());
  EXPECT_EQ(continuation(AttentionMode::kDense, far), far.value);  // the same prompt is recallable
}

TEST(ProbeModel, NativeAttentionMatchesDenseInsideTheWindow) {
  const Haystack near = haystack(700, 650, 9);
  EXPECT_EQ(continuation(AttentionMode::kNative, near), near.value);
}

TEST(ProbeModel, TokenCodesAreDistinctAcrossTheVocabulary) {
  std::set<uint64_t> seen;
  for (int64_t t = 0; t < 129280; ++t) seen.insert(probe_code_bits(t));
  EXPECT_EQ(seen.size(), 129280u);
}

TEST(ProbeModel, RefusesAConfigWithoutTheProbeLayout) {
  test::TempDir dir;
  nlohmann::json config = preset_config_json("v4-tiny");
  config[kSynthWeightsKey] = kProbeWeights;
  try {
    write_synthetic_checkpoint(config, (dir.path / "bad").string(), 0);
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("hidden_size 384"), std::string::npos) << e.what();
  }
}
