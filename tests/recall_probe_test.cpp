// The recall suite on the v4-probe model, whose answer is known: dense attention recalls every
// needle, the sliding window alone recalls none that lies more than 128 tokens back, and native
// (compressed) attention is measured and paired against dense. The 4k-32k grid of the issue is a
// measured run (README, recall section); this is the same check at 1k so it stays fast.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reports/store/store.h"
#include "tests/test_util.h"

using nlohmann::json;

TEST(RecallProbe, DenseRecallsEveryNeedleAndTheWindowOnlyNearOnes) {
  v4b::test::TempDir dir;
  const std::string db = (dir.path / "r.db").string();
  auto r = v4b::test::run_cli("run recall --tasks niah --model v4-probe --template probe --attention dense,window,native --ctx 1k "
                              "--depths linear:5 --n 2 --format json --db " + db,
                              "V4BENCH_CACHE_DIR=" + (dir.path / "cache").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const json out = json::parse(r.out);
  int dense = 0, paired = 0;
  for (const auto& row : out["rows"]) {
    if (row["attention"] == "dense") {
      ++dense;
      EXPECT_EQ(row["accuracy"], 100.0) << row.dump();
    }
    if (row["attention"] == "native-dense") {
      ++paired;
      EXPECT_TRUE(row.contains("mcnemar_p")) << row.dump();
      EXPECT_TRUE(row.contains("kl_native_dense")) << row.dump();
    }
  }
  EXPECT_EQ(dense, 5);
  EXPECT_EQ(paired, 5);

  // Per sample: the window recalls exactly the needles inside its 128 tokens.
  v4b::store::Store store(db);
  const auto runs = store.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  int far = 0, near = 0;
  for (const auto& c : store.cases(runs[0].id)) {
    if (c.params.value("attention", "") != "window") continue;
    for (const auto& s : c.samples) {
      const bool inside = s.details.at("needle_tokens_back").get<int64_t>() <= 128;
      (inside ? near : far) += 1;
      EXPECT_EQ(s.details.at("score").get<double>(), inside ? 1.0 : 0.0) << s.details.dump();
    }
  }
  EXPECT_EQ(far, 8);  // depths 0-75
  EXPECT_EQ(near, 2);  // depth 100
}
