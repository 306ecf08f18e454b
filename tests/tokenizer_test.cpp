// The byte-level BPE tokenizer and the V4 chat encoding: exact ids against Hugging Face `tokenizers`
// (golden files in datasets/), round trips, merge-rank semantics, malformed tokenizer.json files.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <zlib.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "engine/io/chat_encoding.h"
#include "engine/io/tokenizer.h"
#include "tests/test_util.h"

using v4b::test::slurp;
using nlohmann::json;
using v4b::Message;
using v4b::Tokenizer;
using v4b::UsageError;
using Ids = std::vector<int32_t>;

namespace {

namespace fs = std::filesystem;

const fs::path kDatasets = fs::path(V4B_SOURCE_DIR) / "datasets";

// Loading the 128K vocabulary takes a fraction of a second: once per test process.
const Tokenizer& deepseek() {
  static const Tokenizer kTok = Tokenizer::load(kDatasets / "tokenizer" / "deepseek_v3");
  return kTok;
}

void write(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string fnv1a64(const Ids& ids) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const int32_t id : ids)
    for (int k = 0; k < 4; ++k) {
      h ^= (static_cast<uint32_t>(id) >> (8 * k)) & 0xFF;
      h *= 0x100000001b3ULL;
    }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string gzip(const std::string& data) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// A six-token vocabulary where merge rank and greedy longest match disagree: "abc" is a + bc by rank
// ("b c" outranks "a b", and no merge makes "abc"), while a longest-match tokenizer would take "abc".
constexpr const char* kTinyJson = R"({
  "version": "1.0",
  "added_tokens": [{"id": 6, "content": "<pad>", "special": true, "normalized": false},
                   {"id": 7, "content": "<x>", "special": false, "normalized": false},
                   {"id": 8, "content": "<x><y>", "special": false, "normalized": false}],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
  "post_processor": null,
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5},
            "merges": ["b c", "a b"]}
})";

Tokenizer tiny() { return Tokenizer::from_json(kTinyJson, "tiny.json"); }

void expect_usage_error(const std::function<void()>& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected a UsageError";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message should name '" << n << "': " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

}  // namespace

// ---- exact ids ----

TEST(Tokenizer, GoldenLenmlCasesMatchExactly) {
  const json g = json::parse(slurp(kDatasets / "tokenizer" / "deepseek_v3" / "golden_encode_lenml.json"));
  ASSERT_EQ(g["cases"].size(), 11u);
  for (const auto& c : g["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(deepseek().encode(text), c["ids"].get<Ids>()) << text;
    EXPECT_EQ(deepseek().decode(c["ids"].get<Ids>()), text);
  }
}

// Ids from Hugging Face tokenizers (Rust) for prose, code, numbers, CJK, emoji, combining marks,
// special tokens, whitespace runs, CRLF, long runs, and 400 seeded random strings.
TEST(Tokenizer, GoldenHfCasesMatchExactly) {
  const json g = json::parse(slurp(kDatasets / "tokenizer" / "deepseek_v3" / "golden_encode_hf.json"));
  ASSERT_GE(g["cases"].size(), 500u);
  int failures = 0;
  for (const auto& c : g["cases"]) {
    const std::string text = c["text"];
    const Ids want = c["ids"].get<Ids>();
    const Ids got = deepseek().encode(text);
    if (got != want && ++failures <= 10) ADD_FAILURE() << json(text).dump() << "\n got  " << json(got).dump() << "\n want " << json(want).dump();
    EXPECT_EQ(deepseek().decode(got), text) << json(text).dump();
  }
  EXPECT_EQ(failures, 0);
}

TEST(Tokenizer, HaystackNovelsMatchHfCountAndHash) {
  const json g = json::parse(slurp(kDatasets / "tokenizer" / "deepseek_v3" / "golden_encode_hf.json"));
  ASSERT_EQ(g["novels"].size(), 8u);
  for (const auto& n : g["novels"]) {
    const std::string text = slurp(kDatasets / "haystack" / n["file"].get<std::string>());
    ASSERT_EQ(text.size(), n["bytes"].get<size_t>()) << n["file"];
    const Ids ids = deepseek().encode(text);
    EXPECT_EQ(ids.size(), n["n_tokens"].get<size_t>()) << n["file"];
    EXPECT_EQ(fnv1a64(ids), n["fnv1a64"].get<std::string>()) << n["file"];
    EXPECT_EQ(Ids(ids.begin(), ids.begin() + 16), n["first_ids"].get<Ids>()) << n["file"];
    EXPECT_EQ(deepseek().decode(ids), text) << n["file"];
  }
}

// Single tokens read straight from the vocabulary (tokenizer.json spells a leading space as "Ġ").
TEST(Tokenizer, KnownTokensMapToTheirVocabIds) {
  const auto& t = deepseek();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Hello", "Hello"}, {" world", "Ġworld"}, {",", ","}, {"!", "!"}, {"123", "123"}, {"4", "4"},
      {" ", "Ġ"}, {"\n", "Ċ"}, {"\t", "ĉ"}, {" the", "Ġthe"}, {"    ", "ĠĠĠĠ"},
  };
  for (const auto& [text, vocab_text] : cases) {
    const auto id = t.token_to_id(vocab_text);
    ASSERT_TRUE(id.has_value()) << vocab_text;
    EXPECT_EQ(t.encode(text), Ids{*id}) << json(text).dump();
    EXPECT_EQ(t.id_to_token(*id), vocab_text);
    EXPECT_EQ(t.decode(Ids{*id}), text);
  }
  // The golden "Hello, world!" = Hello , Ġworld ! and " 1234" = Ġ 123 4 (digits split in threes).
  EXPECT_EQ(t.encode("Hello, world!"), (Ids{19923, 14, 2058, 3}));
  EXPECT_EQ(t.encode(" 1234"), (Ids{223, 6895, 22}));
  EXPECT_EQ(t.token_to_id("Hello"), 19923);
  EXPECT_EQ(t.token_to_id("Ġworld"), 2058);
}

// Spec §5.6 ids against the shipped vocabulary (tokenizer.json has ids up to 128814; the V4 tokens
// from 128821 on are added by load, at the ids the spec gives).
TEST(Tokenizer, SpecialTokenIdsAgreeWithSpec) {
  const auto& t = deepseek();
  const std::vector<std::pair<std::string, int32_t>> spec = {
      {"<｜begin▁of▁sentence｜>", 0}, {"<｜end▁of▁sentence｜>", 1}, {"<｜User｜>", 128803}, {"<｜Assistant｜>", 128804},
      {"<think>", 128821},           {"</think>", 128822},         {"｜DSML｜", 128825},   {"<｜latest_reminder｜>", 128828},
      {"<｜action｜>", 128829},      {"<｜title｜>", 128836},      {"<｜read_url｜>", 128845},
  };
  for (const auto& [text, id] : spec) {
    EXPECT_EQ(t.token_to_id(text), id) << text;
    EXPECT_EQ(t.encode(text), Ids{id}) << text;
    EXPECT_EQ(t.decode(Ids{id}), text);
  }
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.v4_tokens_added().size(), v4b::deepseek_v4_added_tokens().size());
  EXPECT_EQ(t.vocab_size(), 128846);
  EXPECT_EQ(t.n_tokens(), 128000 + 815 + 13);  // 0..127999, 128000..128814, the V4 additions
}

TEST(Tokenizer, SpecialTokensAreMatchedBeforeBpe) {
  const auto& t = deepseek();
  const Ids hi = t.encode("hi");
  Ids want = {128803};
  want.insert(want.end(), hi.begin(), hi.end());
  want.push_back(128804);
  EXPECT_EQ(t.encode("<｜User｜>hi<｜Assistant｜>"), want);
  EXPECT_EQ(t.encode("<think><think></think>"), (Ids{128821, 128821, 128822}));
  // Partial or spaced spellings are ordinary text.
  for (const char* s : {"<｜User", "｜User｜>", "< think >", "<thinking>"})
    for (const int32_t id : t.encode(s)) EXPECT_LT(id, 128000) << s;
  // Leftmost-longest: "<x><y>" is one added token, not "<x>" then text.
  EXPECT_EQ(tiny().encode("<x><y>"), Ids{8});
  EXPECT_EQ(tiny().encode("<x>ab<x>"), (Ids{7, 3, 7}));
}

TEST(Tokenizer, BosIsPrependedOnlyOnRequest) {
  const auto& t = deepseek();
  EXPECT_EQ(t.encode("Hello, world!", true), (Ids{0, 19923, 14, 2058, 3}));
  EXPECT_EQ(t.encode("", true), Ids{0});
  EXPECT_EQ(t.encode(""), Ids{});
  expect_usage_error([] { tiny().encode("a", true); }, {"tiny.json", "no BOS"});
}

// ---- BPE semantics ----

TEST(Tokenizer, MergesFollowRankNotLongestMatch) {
  const Tokenizer t = tiny();
  EXPECT_EQ(t.encode("abc"), (Ids{0, 4}));  // a + bc ("b c" has rank 0), never ab + c nor abc
  EXPECT_EQ(t.encode("ab"), Ids{3});
  EXPECT_EQ(t.encode("abab"), (Ids{3, 3}));
  EXPECT_EQ(t.encode("bcbc"), (Ids{4, 4}));
  // Bytes missing from a vocabulary without unk are dropped before merging, as in HF's BPE (checked
  // against tokenizers 0.23.2): "a b" becomes "ab".
  EXPECT_EQ(t.encode("a b"), Ids{3});
  EXPECT_EQ(t.encode("a  c"), (Ids{0, 2}));
}

// Both merge paths (rank scan for short words, heap for long ones) against a naive reference:
// merge the leftmost pair of lowest rank until none is left.
TEST(Tokenizer, MergeOrderMatchesNaiveReferenceOnShortAndLongWords) {
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"c", "a"}, {"a", "b"}, {"b", "c"}, {"ab", "c"}, {"a", "a"}, {"c", "c"}, {"ca", "b"},
      {"ab", "ab"}, {"cc", "c"}, {"bc", "bc"}, {"a", "bc"}, {"aa", "aa"}, {"abab", "abab"},
  };
  json vocab = {{"a", 0}, {"b", 1}, {"c", 2}}, jm = json::array();
  for (const auto& [l, r] : merges) {
    if (!vocab.contains(l + r)) vocab[l + r] = vocab.size();
    jm.push_back(l + " " + r);
  }
  const json tj = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", jm}}},
                   {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}},
                   {"decoder", {{"type", "ByteLevel"}}}};
  const Tokenizer t = Tokenizer::from_json(tj.dump(), "abc.json");
  auto naive = [&](const std::string& w) {
    std::vector<std::string> s;
    for (const char c : w) s.emplace_back(1, c);
    while (true) {
      size_t best = s.size(), best_rank = merges.size();
      for (size_t i = 0; i + 1 < s.size(); ++i)
        for (size_t r = 0; r < best_rank; ++r)
          if (merges[r].first == s[i] && merges[r].second == s[i + 1]) best = i, best_rank = r;
      if (best == s.size()) break;
      s[best] += s[best + 1];
      s.erase(s.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    Ids ids;
    for (const auto& p : s) ids.push_back(vocab[p].get<int32_t>());
    return ids;
  };
  std::mt19937 rng(7);
  for (int i = 0; i < 400; ++i) {
    const size_t n = 1 + rng() % (i % 2 == 0 ? 40 : 400);  // long words take the heap path
    std::string w;
    for (size_t k = 0; k < n; ++k) w += "abc"[rng() % (i % 3 == 0 ? 2 : 3)];
    ASSERT_EQ(t.encode(w), naive(w)) << w;
  }
}

// Every Split behavior, plain and inverted, on a literal pattern; expected ids from HF tokenizers
// 0.23.2 on the same tokenizer.json.
TEST(Tokenizer, SplitBehaviorsMatchHf) {
  const json model = {{"type", "BPE"},
                      {"vocab", {{"a", 0}, {"b", 1}, {"-", 2}, {"a-", 3}, {"-b", 4}, {"--", 5}, {"ab", 6}, {"a-b", 7}, {"a--", 8}}},
                      {"merges", {"a -", "- b", "- -", "a b", "a- b", "a- -"}}};
  const std::vector<std::string> texts = {"a-b", "a--b", "-a-", "ab", "--", "a-b-", "-", "a---b-a"};
  using Want = std::vector<Ids>;
  const Want isolated = {{0, 2, 1}, {0, 2, 2, 1}, {2, 0, 2}, {6}, {2, 2}, {0, 2, 1, 2}, {2}, {0, 2, 2, 2, 1, 2, 0}};
  const Want contiguous = {{0, 2, 1}, {0, 5, 1}, {2, 0, 2}, {6}, {5}, {0, 2, 1, 2}, {2}, {0, 5, 2, 1, 2, 0}};
  const Want with_previous = {{3, 1}, {3, 2, 1}, {2, 3}, {6}, {2, 2}, {3, 1, 2}, {2}, {3, 2, 2, 1, 2, 0}};
  const Want with_next = {{0, 4}, {0, 2, 4}, {2, 0, 2}, {6}, {2, 2}, {0, 4, 2}, {2}, {0, 2, 2, 4, 2, 0}};
  const std::vector<std::tuple<std::string, bool, Want>> cases = {
      {"Removed", false, {{0, 1}, {0, 1}, {0}, {6}, {}, {0, 1}, {}, {0, 1, 0}}},
      {"Removed", true, {{2}, {2, 2}, {2, 2}, {}, {2, 2}, {2, 2}, {2}, {2, 2, 2, 2}}},
      {"Isolated", false, isolated},
      {"Isolated", true, isolated},
      {"Contiguous", false, contiguous},
      {"Contiguous", true, contiguous},
      {"MergedWithPrevious", false, with_previous},
      {"MergedWithPrevious", true, with_next},
      {"MergedWithNext", false, with_next},
      {"MergedWithNext", true, with_previous},
  };
  for (const auto& [behavior, invert, want] : cases) {
    const json tj = {{"model", model},
                     {"pre_tokenizer",
                      {{"type", "Sequence"},
                       {"pretokenizers",
                        {{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}},
                         {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
                     {"decoder", {{"type", "ByteLevel"}}}};
    const Tokenizer t = Tokenizer::from_json(tj.dump(), behavior);
    for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(t.encode(texts[i]), want[i]) << behavior << " invert=" << invert << " " << texts[i];
  }
}

// GPT-2-style ByteLevel (its own regex, a space added in front of each piece) on the DeepSeek
// vocabulary; expected ids from HF tokenizers 0.23.2 with the same pre_tokenizer.
TEST(Tokenizer, Gpt2StyleByteLevelPreTokenizerMatchesHf) {
  const std::string gz = slurp(v4b::default_tokenizer_path() / "tokenizer.json.gz");
  json tj;
  {
    z_stream zs{};
    inflateInit2(&zs, 16 + MAX_WBITS);
    std::string text(16 << 20, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
    zs.avail_in = static_cast<uInt>(gz.size());
    zs.next_out = reinterpret_cast<Bytef*>(text.data());
    zs.avail_out = static_cast<uInt>(text.size());
    ASSERT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
    text.resize(zs.total_out);
    inflateEnd(&zs);
    tj = json::parse(text);
  }
  tj["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  const Tokenizer t = Tokenizer::from_json(tj.dump(), "gpt2-style");
  const std::vector<std::pair<std::string, Ids>> cases = {
      {"Hello world", {45948, 2058}},
      {"Hello  world's 1234 test!!", {45948, 223, 2058, 734, 223, 736, 2012, 1950, 6909}},
      {"it's\n\nnew  line\r\n", {436, 734, 201, 201, 2839, 223, 2562, 204, 201}},
      {"中文 text", {223, 21134, 3051}},
      {"<｜User｜>hi", {128803, 19346}},
      {"  x", {223, 1527}},
      {" y", {383}},
      {"\u3000z", {223, 18524, 92}},
  };
  for (const auto& [text, want] : cases) EXPECT_EQ(t.encode(text), want) << json(text).dump();
}

TEST(Tokenizer, LongRunsWithoutSplitPointsStayCorrect) {
  const auto& t = deepseek();
  for (const std::string& s : {std::string(200000, 'a'), std::string(100000, ' '), std::string(30000, '7'),
                               std::string(60000, '\n'), std::string("\xE4\xB8\xAD") + std::string(3000, 'x')}) {
    const Ids ids = t.encode(s);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(t.decode(ids), s);
  }
}

// ---- round trips and decoding ----

TEST(Tokenizer, RandomStringsRoundTrip) {
  const auto& t = deepseek();
  // Code point pools: ASCII (weighted), controls and whitespace, Latin, combining marks, Greek,
  // Cyrillic, Hebrew/Arabic, Devanagari, Thai, punctuation and ZWJ, kana, CJK, Hangul, fullwidth,
  // emoji and modifiers, CJK extension B, private use, the last planes.
  const std::vector<std::pair<uint32_t, uint32_t>> pools = {
      {0x20, 0x7E},     {0x20, 0x7E},     {0x20, 0x7E},   {0x00, 0x20},     {0xA0, 0x24F},   {0x300, 0x36F},
      {0x370, 0x3FF},   {0x400, 0x4FF},   {0x590, 0x6FF}, {0x900, 0x97F},   {0xE00, 0xE7F},  {0x2000, 0x206F},
      {0x3000, 0x30FF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0xFF00, 0xFFEF}, {0x1F300, 0x1FAFF}, {0x1F3FB, 0x1F3FF},
      {0x20000, 0x2A6DF}, {0xE000, 0xF8FF}, {0xF0000, 0x10FFFF},
  };
  const std::vector<std::string> inserts = {"<｜User｜>", "<think>", "</think>", "<｜begin▁of▁sentence｜>", "｜DSML｜",
                                            "\xE2\x80\x8D", "\r\n", "   ", "\t", " 12345 "};
  std::mt19937 rng(20240607);
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    const size_t n = rng() % 60;
    for (size_t k = 0; k < n; ++k) {
      if (rng() % 16 == 0) {
        s += inserts[rng() % inserts.size()];
        continue;
      }
      const auto& [lo, hi] = pools[rng() % pools.size()];
      uint32_t cp = lo + rng() % (hi - lo + 1);
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';  // surrogates are not characters
      append_utf8(s, cp);
    }
    const Ids ids = t.encode(s);
    for (const int32_t id : ids) ASSERT_TRUE(id >= 0 && id < t.vocab_size());
    ASSERT_EQ(t.decode(ids), s) << json(s).dump();
  }
}

TEST(Tokenizer, DecodeReplacesInvalidUtf8AndNeverFails) {
  const auto& t = deepseek();
  // "🤖" is two tokens; each alone is part of a character.
  const Ids robot = t.encode("\xF0\x9F\xA4\x96");
  ASSERT_EQ(robot.size(), 2u);
  EXPECT_EQ(t.decode(Ids{robot[0]}), "\xEF\xBF\xBD");
  EXPECT_EQ(t.decode_bytes(Ids{robot[0]}) + t.decode_bytes(Ids{robot[1]}), "\xF0\x9F\xA4\x96");
  EXPECT_EQ(t.decode(robot), "\xF0\x9F\xA4\x96");
  // Random ids: the text is always valid UTF-8, and raw bytes concatenate per id.
  std::mt19937 rng(99);
  for (int i = 0; i < 2000; ++i) {
    Ids ids;
    for (size_t k = rng() % 12; k > 0; --k) {
      int32_t id = static_cast<int32_t>(rng() % 128000);
      if (rng() % 8 == 0) id = 128000 + static_cast<int32_t>(rng() % 815);
      ids.push_back(id);
    }
    const std::string text = t.decode(ids);
    EXPECT_EQ(v4b::utf8_invalid_offset(text), std::string::npos);
    std::string bytes;
    for (const int32_t id : ids) bytes += t.decode_bytes(Ids{id});
    EXPECT_EQ(t.decode_bytes(ids), bytes);
    EXPECT_EQ(text, v4b::utf8_lossy(bytes));
  }
}

TEST(Tokenizer, Utf8LossyFollowsMaximalSubparts) {
  using v4b::utf8_lossy;
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_lossy("plain \xC3\xA9"), "plain \xC3\xA9");
  EXPECT_EQ(utf8_lossy("a\x80z"), "a" + r + "z");
  EXPECT_EQ(utf8_lossy("\xE4\xB8"), r);                 // a cut 3-byte character: one replacement
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"), r);             // a cut 4-byte character
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), r + r + r);     // a surrogate: three
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), r + r);             // overlong
  EXPECT_EQ(utf8_lossy("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(utf8_lossy("\xFF\xFE"), r + r);
  EXPECT_EQ(v4b::utf8_invalid_offset("ok\xE4\xB8"), 2u);
  EXPECT_EQ(v4b::utf8_invalid_offset("ok"), std::string::npos);
}

TEST(Tokenizer, EncodeRejectsInvalidUtf8AndDecodeRejectsUnknownIds) {
  const auto& t = deepseek();
  expect_usage_error([&] { t.encode("ab\xFF"); }, {"not valid UTF-8", "byte 2"});
  expect_usage_error([&] { t.decode(Ids{-1}); }, {"-1", "out of range"});
  expect_usage_error([&] { t.decode(Ids{t.vocab_size()}); }, {std::to_string(t.vocab_size()), "out of range"});
  expect_usage_error([&] { t.decode(Ids{128815}); }, {"128815", "no token"});  // between V3's and V4's tokens
}

// ---- loading ----

TEST(TokenizerLoad, PlainGzipDirectoryAndCheckpointFallback) {
  v4b::test::TempDir dir;
  write(dir.path / "tokenizer.json", kTinyJson);
  EXPECT_EQ(Tokenizer::load(dir.path / "tokenizer.json").encode("abc"), (Ids{0, 4}));
  EXPECT_EQ(Tokenizer::load(dir.path).encode("abc"), (Ids{0, 4}));  // a directory finds its tokenizer.json
  EXPECT_EQ(Tokenizer::for_checkpoint(dir.path).vocab_size(), 9);   // the checkpoint's own file wins
  v4b::test::TempDir gz;
  write(gz.path / "tokenizer.json.gz", gzip(kTinyJson));
  EXPECT_EQ(Tokenizer::load(gz.path).encode("abc"), (Ids{0, 4}));
  v4b::test::TempDir empty;
  EXPECT_EQ(Tokenizer::for_checkpoint(empty.path).vocab_size(), deepseek().vocab_size());  // else the default
  EXPECT_EQ(Tokenizer::load().vocab_size(), deepseek().vocab_size());
  EXPECT_TRUE(fs::exists(v4b::default_tokenizer_path() / "tokenizer.json.gz"));
}

TEST(TokenizerLoad, ConfigNamesBosAndEos) {
  const Tokenizer t = Tokenizer::from_json(kTinyJson, "tiny.json", {}, R"({"bos_token": {"content": "<x>"}, "eos_token": "<pad>"})");
  EXPECT_EQ(t.bos_id(), 7);
  EXPECT_EQ(t.eos_id(), 6);
  EXPECT_EQ(t.encode("ab", true), (Ids{7, 3}));
  EXPECT_EQ(tiny().bos_id(), std::nullopt);  // no config and none of the usual BOS names
  EXPECT_EQ(tiny().eos_id(), std::nullopt);
}

TEST(TokenizerLoad, V4TokensAreOptionalAndNeverOverrideTheFile) {
  v4b::TokenizerOptions no_v4;
  no_v4.add_v4_tokens = false;
  const Tokenizer v3 = Tokenizer::load({}, no_v4);
  EXPECT_EQ(v3.token_to_id("<think>"), std::nullopt);
  EXPECT_EQ(v3.vocab_size(), 128815);
  EXPECT_TRUE(v3.v4_tokens_added().empty());
  // Not a DeepSeek vocabulary: nothing is added.
  EXPECT_TRUE(tiny().v4_tokens_added().empty());
}

TEST(TokenizerLoad, MalformedFilesAreClearUsageErrors) {
  v4b::test::TempDir dir;
  const fs::path p = dir.path / "tokenizer.json";
  const std::string path = p.string();
  auto load_text = [&](const std::string& text) {
    write(p, text);
    Tokenizer::load(p);
  };
  expect_usage_error([&] { Tokenizer::load(dir.path / "missing.json"); }, {"missing.json", "does not exist"});
  expect_usage_error([&] { Tokenizer::load(dir.path); }, {"no tokenizer.json", path.substr(0, path.size() - 15)});
  expect_usage_error([&] { load_text(std::string(kTinyJson).substr(0, 200)); }, {path, "truncated"});
  expect_usage_error([&] { load_text(""); }, {path, "empty"});
  expect_usage_error([&] { load_text("this is not json"); }, {path, "not valid JSON"});
  expect_usage_error([&] { load_text("[1, 2]"); }, {path, "not a JSON object"});
  expect_usage_error([&] { load_text(R"({"version": "1.0"})"); }, {path, "'model' is missing"});
  expect_usage_error([&] { load_text(R"({"model": {"type": "BPE", "merges": []}})"); }, {path, "model.vocab", "missing"});
  expect_usage_error([&] { load_text(R"({"model": {"type": "BPE", "vocab": {"a": 0}}})"); }, {path, "model.merges", "missing"});
  expect_usage_error([&] { load_text(R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})"); }, {path, "WordPiece", "not supported"});
  expect_usage_error([&] { load_text(R"({"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}})"); }, {path, "\"a\"", "id"});
  expect_usage_error([&] { load_text(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a q"]},
                                        "decoder": {"type": "ByteLevel"}})"); },
                     {path, "merges[0]", "missing from model.vocab"});
  expect_usage_error([&] { load_text(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                                        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"},
                                        "decoder": {"type": "ByteLevel"}})"); },
                     {path, "(unclosed", "does not compile"});
  expect_usage_error([&] { load_text(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                                        "pre_tokenizer": {"type": "Metaspace"}})"); },
                     {path, "Metaspace", "not supported"});
  expect_usage_error([&] { load_text(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                                        "normalizer": {"type": "NFKC"}, "decoder": {"type": "ByteLevel"}})"); },
                     {path, "NFKC", "not supported"});
  expect_usage_error([&] { load_text(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})"); },
                     {path, "byte-level"});
  // A gzip file cut short.
  const std::string gz = slurp(v4b::default_tokenizer_path() / "tokenizer.json.gz");
  expect_usage_error([&] { load_text(gz.substr(0, gz.size() / 2)); }, {path, "gzip", "truncated"});
}

// ---- the V4 chat encoding ----

TEST(ChatEncoding, ChatModeSystemAndUser) {
  const auto& t = deepseek();
  const std::vector<Message> msgs = {{"system", "You are a helpful assistant.", {}}, {"user", "Hi", {}}};
  EXPECT_EQ(v4b::render_chat(msgs, false), "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>Hi<｜Assistant｜></think>");
  Ids want = {0};
  for (const int32_t id : t.encode("You are a helpful assistant.")) want.push_back(id);
  want.push_back(128803);
  for (const int32_t id : t.encode("Hi")) want.push_back(id);
  want.insert(want.end(), {128804, 128822});
  EXPECT_EQ(v4b::encode_chat(msgs, false, t), want);
}

TEST(ChatEncoding, ThinkingDropsEarlierReasoning) {
  const std::vector<Message> msgs = {
      {"user", "1+1?", {}}, {"assistant", "2", "one plus one"}, {"user", "and 2+2?", {}}};
  EXPECT_EQ(v4b::render_chat(msgs, true),
            "<｜begin▁of▁sentence｜><｜User｜>1+1?<｜Assistant｜></think>2<｜end▁of▁sentence｜>"
            "<｜User｜>and 2+2?<｜Assistant｜><think>");
  EXPECT_EQ(v4b::render_chat(msgs, false),
            "<｜begin▁of▁sentence｜><｜User｜>1+1?<｜Assistant｜></think>2<｜end▁of▁sentence｜>"
            "<｜User｜>and 2+2?<｜Assistant｜></think>");
  const Ids ids = v4b::encode_chat(msgs, true, deepseek());
  EXPECT_EQ(ids.front(), 0);
  EXPECT_EQ(Ids(ids.end() - 2, ids.end()), (Ids{128804, 128821}));
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 1);  // one finished assistant turn
}

TEST(ChatEncoding, FinalAssistantTurnKeepsReasoningInThinkingMode) {
  const std::vector<Message> msgs = {{"user", "Q", {}}, {"assistant", "A", "R"}};
  EXPECT_EQ(v4b::render_chat(msgs, true),
            "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜><think>R</think>A<｜end▁of▁sentence｜>");
  EXPECT_EQ(v4b::render_chat(msgs, false),
            "<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜></think>A<｜end▁of▁sentence｜>");
  const Ids ids = v4b::encode_chat(msgs, true, deepseek());
  const Ids q = deepseek().encode("Q"), r = deepseek().encode("R"), a = deepseek().encode("A");
  Ids want = {0, 128803};
  want.insert(want.end(), q.begin(), q.end());
  want.insert(want.end(), {128804, 128821});
  want.insert(want.end(), r.begin(), r.end());
  want.push_back(128822);
  want.insert(want.end(), a.begin(), a.end());
  want.push_back(1);
  EXPECT_EQ(ids, want);
}

TEST(ChatEncoding, ConsecutiveUsersMergeAndErrorsAreClear) {
  EXPECT_EQ(v4b::render_chat({{"user", "a", {}}, {"user", "b", {}}}, false),
            "<｜begin▁of▁sentence｜><｜User｜>a\n\nb<｜Assistant｜></think>");
  EXPECT_EQ(v4b::render_chat({}, true), "<｜begin▁of▁sentence｜>");
  expect_usage_error([] { v4b::render_chat({{"tool", "x", {}}}, false); }, {"'tool'"});
  expect_usage_error([] { v4b::encode_chat({{"user", "x", {}}}, false, tiny()); }, {"tiny.json", "<｜begin▁of▁sentence｜>"});
}
