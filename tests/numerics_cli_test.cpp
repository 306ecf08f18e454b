// --numerics end to end: every engine-backed command takes it, stores or prints the resolved value
// (fp32 | official, never "default"), and refuses an unknown value or official on a family without
// it with one line, exit 2 and nothing stored.
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "evals/suites/kld/npy.h"
#include "reports/store/store.h"
#include "tests/test_util.h"

using nlohmann::json;
using v4b::test::CliResult;
using v4b::test::expect_usage_error;
using v4b::test::run_cli;
using v4b::test::TempDir;

namespace {

class NumericsCli : public ::testing::Test {
 protected:
  TempDir dir;
  std::string env() const { return "V4BENCH_CACHE_DIR=" + (dir.path / "cache").string(); }
  std::string db() const { return (dir.path / "r.db").string(); }
  std::string path(const std::string& name) const { return (dir.path / name).string(); }
  CliResult v4(const std::string& args) { return run_cli(args + " --db " + db(), env()); }
  CliResult plain(const std::string& args) { return run_cli(args, env()); }  // commands without --db
  int64_t run_count() {
    if (!std::filesystem::exists(db())) return 0;
    const CliResult r = run_cli("runs list --format json --db " + db());
    EXPECT_EQ(r.status, 0) << r.err;
    return r.status == 0 ? static_cast<int64_t>(json::parse(r.out).size()) : -1;
  }
  json show(const std::string& id) {
    const CliResult r = v4("runs show " + id + " --format json");
    EXPECT_EQ(r.status, 0) << r.err;
    return r.status == 0 ? json::parse(r.out) : json::object();
  }
  json generate(const std::string& model, const std::string& flags) {
    const CliResult r = plain("generate --model " + model + " --prompt-ids 1,2,3,4,5,6 -n 3 --format json " + flags);
    EXPECT_EQ(r.status, 0) << r.err;
    return r.status == 0 ? json::parse(r.out) : json::object();
  }
};

// The one query's rows of an in-memory SQLite database loaded with `sql`.
std::vector<std::vector<std::string>> sql_rows(const std::string& sql, const std::string& query) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  std::vector<std::vector<std::string>> rows;
  sqlite3_exec(
      db, query.c_str(),
      [](void* p, int n, char** v, char**) {
        auto* out = static_cast<std::vector<std::vector<std::string>>*>(p);
        out->emplace_back();
        for (int i = 0; i < n; ++i) out->back().push_back(v[i] ? v[i] : "NULL");
        return 0;
      },
      &rows, nullptr);
  sqlite3_close(db);
  return rows;
}

}  // namespace

TEST_F(NumericsCli, BadValuesAndFamiliesAreOneLineExit2AndStoreNothing) {
  // An unknown value, on every command that takes the flag.
  expect_usage_error(plain("generate --model v4-tiny --prompt-ids 1,2 --numerics bf8"), "bf8");
  expect_usage_error(plain("bench -m v4-tiny -p 8 -n 0 --numerics fp16"), "fp16");
  expect_usage_error(plain("serve --model v4-tiny --port 0 --numerics exact"), "exact");
  expect_usage_error(v4("run kv --model v4-tiny --ctx 64 --numerics fast"), "fast");
  expect_usage_error(v4("run flops --model v4-tiny --ctx 64 --numerics fast"), "fast");
  expect_usage_error(v4("kld --base v4-tiny --base-numerics fp16 --ids 1,2"), "--base-numerics");
  expect_usage_error(v4("kld --base v4-tiny --cand-numerics official,fp16 --ids 1,2"), "fp16");
  expect_usage_error(v4("run recall --model v4-tiny --map-ids --ctx 300 --numerics fp64"), "fp64");
  expect_usage_error(v4("run throughput --backend engine --model v4-tiny --numerics fp64"), "fp64");
  expect_usage_error(v4("run coding --backend engine --model v4-tiny --limit 1 --numerics fp64"), "fp64");

  // Official on a family without it: the model is named, whichever model of a run it is.
  const CliResult g = plain("generate --model gqa-tiny --prompt-ids 1,2 --numerics official");
  expect_usage_error(g, "gqa-tiny");
  EXPECT_NE(g.err.find("official"), std::string::npos) << g.err;
  const CliResult b = plain("bench -m v4-tiny,gqa-tiny -p 8 -n 0 -r 1 --warmup 0 --numerics official");
  expect_usage_error(b, "gqa-tiny");
  EXPECT_EQ(b.out, "") << "no model may be benchmarked before every model is checked";
  expect_usage_error(plain("serve --model gqa-tiny --port 0 --numerics official"), "gqa-tiny");
  expect_usage_error(v4("run kv --model v4-tiny,gqa-tiny --ctx 64 --kv-format bf16 --numerics official"), "gqa-tiny");
  expect_usage_error(v4("run flops --model gqa-tiny,v4-tiny --ctx 64 --numerics official"), "gqa-tiny");
  expect_usage_error(v4("kld --base gqa-tiny --cand-numerics official --ids 1,2"), "--cand-numerics official for gqa-tiny");
  expect_usage_error(v4("kld --base gqa-tiny --base-numerics official --cand-numerics fp32 --ids 1,2"), "--base-numerics");
  expect_usage_error(v4("run recall --model gqa-tiny --map-ids --ctx 300 --numerics official"), "gqa-tiny");
  expect_usage_error(v4("run throughput --backend engine --model gqa-tiny --numerics official"), "gqa-tiny");
  expect_usage_error(v4("run coding --backend engine --model gqa-tiny --limit 1 --numerics official"), "gqa-tiny");

  // Where numerics do not apply, saying one is a mistake.
  expect_usage_error(v4("run throughput --base-url http://127.0.0.1:9 --model m --numerics fp32"), "--backend engine");
  expect_usage_error(v4("run recall --backend http --base-url http://127.0.0.1:9 --model m --ctx 512 --numerics fp32"), "--backend engine");
  expect_usage_error(v4("kld --base v4-tiny --cand-numerics fp32,fp32 --ids 1,2"), "twice");
  v4b::evals::NpyWriter w(path("base.npy"), 512);
  w.append(std::vector<float>(512, 0.0f));
  w.close();
  expect_usage_error(v4("kld --base " + path("base.npy") + " --base-numerics fp32 --cand v4-tiny --ids 1"), "logits file");

  // A plan is checked whole: a bad second step stores not even the first.
  std::ofstream(path("plan.json")) << R"({"steps": [{"suite": "kv", "args": "--model v4-tiny --ctx 64 --kv-format bf16"},
    {"suite": "flops", "args": "--model gqa-tiny --ctx 64 --numerics official"}]})";
  expect_usage_error(v4("run --plan " + path("plan.json")), "gqa-tiny");
  EXPECT_FALSE(std::filesystem::exists(db())) << "bad input must not create the database";

  // With a database present, bad input adds no run.
  ASSERT_EQ(v4("run kv --model gqa-tiny --ctx 64 --kv-format bf16").status, 0);
  expect_usage_error(v4("run kv --model v4-tiny,gqa-tiny --ctx 64 --kv-format bf16 --numerics official"), "gqa-tiny");
  expect_usage_error(v4("kld --base gqa-tiny --cand-numerics official --ids 1,2"), "gqa-tiny");
  expect_usage_error(v4("run --plan " + path("plan.json")), "gqa-tiny");
  EXPECT_EQ(run_count(), 1);
}

TEST_F(NumericsCli, GenerateRunsBothAndPrintsWhatRan) {
  const json def = generate("v4-tiny", ""), off = generate("v4-tiny", "--numerics official"), fp = generate("v4-tiny", "--numerics fp32");
  EXPECT_EQ(def["numerics"], "official");  // DeepSeek-V4's default
  EXPECT_EQ(off["numerics"], "official");
  EXPECT_EQ(fp["numerics"], "fp32");
  EXPECT_EQ(def["logits_hash"], off["logits_hash"]);
  EXPECT_NE(fp["logits_hash"], off["logits_hash"]) << "official numerics round what fp32 keeps";
  EXPECT_EQ(off["bf16_activations"], true);  // implied by official
  EXPECT_EQ(fp["bf16_activations"], false);
  EXPECT_EQ(fp["tokens"].size(), 3u);
  EXPECT_EQ(off["tokens"].size(), 3u);
  EXPECT_EQ(generate("gqa-tiny", "")["numerics"], "fp32");  // no official numerics there

  const CliResult t = plain("generate --model v4-tiny --prompt-ids 1,2,3 -n 2 --numerics fp32");
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_NE(t.out.find("fp32 numerics"), std::string::npos) << t.out;
}

TEST_F(NumericsCli, KldComparesFp32BaseWithOfficialCandidateInOneRun) {
  const CliResult r = v4("kld --base v4-tiny --base-numerics fp32 --cand v4-tiny --cand-numerics official --tokens 200 --format json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json rows = json::parse(r.out)["rows"];
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["base_numerics"], "fp32");
  EXPECT_EQ(rows[0]["cand_numerics"], "official");
  EXPECT_EQ(rows[0]["positions"], 200);
  EXPECT_GE(rows[0]["kld_mean"].get<double>(), 0.0);
  EXPECT_LT(rows[0]["kld_mean"].get<double>(), 10.0);

  const json s = show("last");
  EXPECT_EQ(s["params"]["base_numerics"], "fp32");
  EXPECT_EQ(s["params"]["cand_numerics_list"], json::array({"official"}));
  ASSERT_EQ(s["cases"].size(), 1u);
  EXPECT_EQ(s["cases"][0]["params"]["cand_numerics"], "official");
  EXPECT_NE(s["cases"][0]["key"].get<std::string>().find("cand_numerics=official"), std::string::npos);

  // A comma list is one case per value: the candidate that matches the base is exactly zero; the
  // table names each side's numerics, the report and `runs show` the run's.
  const CliResult two = v4("run kld --base v4-tiny --base-numerics fp32 --cand-numerics fp32,official --tokens 200 --format json");
  ASSERT_EQ(two.status, 0) << two.err;
  const json rows2 = json::parse(two.out)["rows"];
  ASSERT_EQ(rows2.size(), 2u);
  std::set<std::string> seen;
  for (const auto& row : rows2) {
    seen.insert(row["cand_numerics"].get<std::string>());
    if (row["cand_numerics"] == "fp32") EXPECT_EQ(row["kld_mean"], 0.0) << row.dump();
    else EXPECT_GT(row["kld_mean"].get<double>(), 0.0) << row.dump();
  }
  EXPECT_EQ(seen, (std::set<std::string>{"fp32", "official"}));
  const CliResult table = v4("runs show last");
  ASSERT_EQ(table.status, 0) << table.err;
  EXPECT_NE(table.out.find("v4-tiny/native/bf16/fp32"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("v4-tiny/native/bf16/official"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("numerics base fp32, candidate fp32,official"), std::string::npos) << table.out;
  const CliResult md = v4("report last --format md");
  ASSERT_EQ(md.status, 0) << md.err;
  EXPECT_NE(md.out.find("- **numerics**: base fp32, candidate fp32,official"), std::string::npos) << md.out;
}

TEST_F(NumericsCli, BenchCarriesANumericsColumnInEveryFormat) {
  const CliResult j = plain("bench -m v4-tiny,gqa-tiny -p 8 -n 0 -r 1 --warmup 0 -t 1 --format json");
  ASSERT_EQ(j.status, 0) << j.err;
  const json rows = json::parse(j.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["model"], "v4-tiny");
  EXPECT_EQ(rows[0]["numerics"], "official");
  EXPECT_EQ(rows[0]["activations"], "bf16");  // implied by official
  EXPECT_EQ(rows[1]["model"], "gqa-tiny");
  EXPECT_EQ(rows[1]["numerics"], "fp32");
  EXPECT_EQ(rows[1]["activations"], "fp32");

  const CliResult fp = plain("bench -m v4-tiny -p 8 -n 0 -r 1 --warmup 0 -t 1 --numerics fp32 --format json");
  ASSERT_EQ(fp.status, 0) << fp.err;
  EXPECT_EQ(json::parse(fp.out)[0]["numerics"], "fp32");
  EXPECT_EQ(json::parse(fp.out)[0]["activations"], "fp32");

  const CliResult md = plain("bench -m v4-tiny -p 8 -n 0 -r 1 --warmup 0 -t 1");
  ASSERT_EQ(md.status, 0) << md.err;
  EXPECT_NE(md.out.find("| numerics |"), std::string::npos) << md.out;
  EXPECT_NE(md.out.find("| official |"), std::string::npos) << md.out;
  const CliResult csv = plain("bench -m v4-tiny -p 8 -n 0 -r 1 --warmup 0 -t 1 --numerics fp32 --format csv");
  ASSERT_EQ(csv.status, 0) << csv.err;
  EXPECT_NE(csv.out.find(",activations,numerics,"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find(",fp32,fp32,"), std::string::npos) << csv.out;
  const CliResult sql = plain("bench -m v4-tiny,gqa-tiny -p 8 -n 0 -r 1 --warmup 0 -t 1 --format sql");
  ASSERT_EQ(sql.status, 0) << sql.err;
  EXPECT_EQ(sql_rows(sql.out, "SELECT model, numerics FROM test ORDER BY model"),
            (std::vector<std::vector<std::string>>{{"gqa-tiny", "fp32"}, {"v4-tiny", "official"}}));
}

TEST_F(NumericsCli, SuitesStoreTheResolvedNumericsPerModelAndCase) {
  // kv and flops: one value per model, in the run's params and in each case.
  const CliResult kv = v4("run kv --model v4-tiny,gqa-tiny --ctx 64 --kv-format bf16 --format json");
  ASSERT_EQ(kv.status, 0) << kv.err;
  for (const auto& row : json::parse(kv.out)["rows"]) EXPECT_EQ(row["numerics"], row["model"] == "v4-tiny" ? "official" : "fp32") << row.dump();
  EXPECT_EQ(show("last")["params"]["numerics"], (json{{"v4-tiny", "official"}, {"gqa-tiny", "fp32"}}));
  const CliResult kv_table = v4("runs show last");
  ASSERT_EQ(kv_table.status, 0) << kv_table.err;
  EXPECT_NE(kv_table.out.find("numerics v4-tiny official, gqa-tiny fp32"), std::string::npos) << kv_table.out;
  const CliResult flops = v4("run flops --model v4-tiny,gqa-tiny --ctx 64 --numerics fp32 --format json");
  ASSERT_EQ(flops.status, 0) << flops.err;
  for (const auto& row : json::parse(flops.out)["rows"]) EXPECT_EQ(row["numerics"], "fp32") << row.dump();
  EXPECT_EQ(show("last")["params"]["numerics"], (json{{"v4-tiny", "fp32"}, {"gqa-tiny", "fp32"}}));

  // Single-model engine suites: the params and every case.
  const CliResult tp = v4("run throughput --backend engine --model v4-tiny --concurrency 1 --num-prompts 1 --warmup 0 --input-len 4 --output-len 2 "
                          "--threads 1 --numerics fp32 --format json");
  ASSERT_EQ(tp.status, 0) << tp.err;
  const json tps = show("last");
  EXPECT_EQ(tps["params"]["numerics"], "fp32");
  EXPECT_EQ(tps["cases"][0]["params"]["numerics"], "fp32");
  const CliResult rc = v4("run recall --model v4-tiny --map-ids --ctx 300 --depths 50 --n 1 --max-new-tokens 2 "
                          "--attention native --format json");
  ASSERT_EQ(rc.status, 0) << rc.err;
  const json rcs = show("last");
  EXPECT_EQ(rcs["params"]["numerics"], "official");
  for (const auto& c : rcs["cases"]) EXPECT_EQ(c["params"]["numerics"], "official") << c.dump();

  // Plans take the suites' flags; the report shows each run's numerics beside its parameters.
  std::ofstream(path("plan.json")) << R"({"steps": [{"suite": "kv", "args": "--model v4-tiny --ctx 64 --kv-format bf16 --numerics fp32"},
    {"suite": "kld", "args": ["--base", "v4-tiny", "--base-numerics", "fp32", "--cand-numerics", "official", "--tokens", "64"]}]})";
  const CliResult plan = v4("run --plan " + path("plan.json") + " --format json");
  ASSERT_EQ(plan.status, 0) << plan.err;
  const json runs = json::parse(plan.out)["runs"];
  ASSERT_EQ(runs.size(), 2u);
  const std::string kv_id = std::to_string(runs[0]["run_id"].get<int64_t>()), kld_id = std::to_string(runs[1]["run_id"].get<int64_t>());
  EXPECT_EQ(show(kv_id)["params"]["numerics"], (json{{"v4-tiny", "fp32"}}));
  EXPECT_EQ(show(kld_id)["params"]["cand_numerics_list"], json::array({"official"}));
  const CliResult html = v4("report " + kv_id + " " + kld_id + " --format html --out " + path("r.html"));
  ASSERT_EQ(html.status, 0) << html.err;
  std::ifstream in(path("r.html"));
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("<dt>numerics</dt><dd>v4-tiny fp32</dd>"), std::string::npos);
  EXPECT_NE(text.find("<dt>numerics</dt><dd>base fp32, candidate official</dd>"), std::string::npos);
}

TEST_F(NumericsCli, AResumedRunKeepsItsStoredNumerics) {
  // Killed after one case, resumed without flags: the rest run with the stored fp32, not V4's default.
  const CliResult killed =
      run_cli("run kv --model v4-tiny --ctx 64,128,256 --kv-format bf16 --numerics fp32 --db " + db(), env() + " V4BENCH_TEST_KILL_AFTER_CASES=1");
  ASSERT_TRUE(killed.signaled) << killed.err;
  const CliResult resumed = v4("run kv --resume 1 --format json");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(json::parse(resumed.out)["executed"], 2);
  const json s = show("1");
  ASSERT_EQ(s["cases"].size(), 3u);
  for (const auto& c : s["cases"]) EXPECT_EQ(c["params"]["numerics"], "fp32") << c.dump();

  // A run stored before numerics existed ran FP32 activations: it resumes as fp32 with its old keys.
  int64_t old_id = 0;
  {
    v4b::store::Store store(db());
    old_id = store.create_run({"kld", "v4-tiny", json{{"base", "v4-tiny"}, {"base_attention", "native"}, {"base_kv_format", "bf16"},
                                                      {"cand", "v4-tiny"}, {"cand_attentions", {"native"}}, {"cand_kv_formats", {"bf16"}},
                                                      {"tokens", 32}, {"score_from", 0}, {"bin", 16}, {"ids", "1,2,3,4,5,6,7,8"}},
                               "", json::object(), 0});
  }
  const CliResult old = v4("run kld --resume " + std::to_string(old_id) + " --format json");
  ASSERT_EQ(old.status, 0) << old.err;
  const json rows = json::parse(old.out)["rows"];
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["kld_mean"], 0.0);  // fp32 against fp32
  const json o = show(std::to_string(old_id));
  EXPECT_EQ(o["cases"][0]["key"], "cand_attention=native|cand_kv_format=bf16");
  EXPECT_EQ(o["cases"][0]["params"]["cand_numerics"], "fp32");
}
