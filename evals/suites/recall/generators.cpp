#include "evals/suites/recall/generators.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/hashing.h"
#include "engine/io/files.h"
#include "engine/core/thread_pool.h"

namespace v4b::evals::recall {

namespace {

// RULER's repeated-noise haystack line (niah_single_1, vt).
constexpr const char* kNoise = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

// The eight novels in MANIFEST order: RULER's "essay" haystack (its Paul Graham essays are not ours to ship).
constexpr const char* kNovels[] = {"alice_in_wonderland.txt", "pride_and_prejudice.txt", "adventures_of_sherlock_holmes.txt",
                                   "picture_of_dorian_gray.txt", "jungle_book.txt", "moby_dick.txt", "dracula.txt",
                                   "tale_of_two_cities.txt"};

// SplitMix64 with the draws prompts need; explicit so prompts agree across standard libraries.
struct Rng : SplitMix64 {
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }
  // k distinct values of [0, n), in draw order (partial Fisher-Yates).
  std::vector<int64_t> sample(int64_t n, int64_t k) {
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    for (int64_t i = 0; i < k; ++i) std::swap(idx[i], idx[i + static_cast<int64_t>(below(static_cast<uint64_t>(n - i)))]);
    idx.resize(static_cast<size_t>(k));
    return idx;
  }
};

uint64_t mix(uint64_t a, uint64_t b) {
  Rng r{a ^ (b * 0xD6E8FEB86659FD93ull)};
  return r.next();
}
uint64_t hash_str(std::string_view s) { return v4b::fnv1a(s); }

std::vector<std::string> read_lines(const std::filesystem::path& p) {
  std::istringstream in(read_file_bytes(p, "recall data file"));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (size_t at; (at = s.find(from, pos)) != std::string::npos; pos = at + from.size()) {
    out.append(s, pos, at - pos);
    out.append(to);
  }
  out.append(s, pos);
  s = std::move(out);
}

// Ends a sentence: last character (before closing quotes/brackets) is . ! or ?, and not a title.
bool ends_sentence(std::string_view w) {
  while (!w.empty() && (std::isspace(static_cast<unsigned char>(w.back())) || w.back() == '"' || w.back() == '\'' || w.back() == ')'))
    w.remove_suffix(1);
  if (w.size() >= 3 && w.substr(w.size() - 3) == "\xE2\x80\x9D") w.remove_suffix(3);  // closing curly quote
  if (w.empty()) return false;
  const char c = w.back();
  if (c != '.' && c != '!' && c != '?') return false;
  for (std::string_view t : {"Mr.", "Mrs.", "Dr.", "St.", "Ms."})
    if (w.size() >= t.size() && w.substr(w.size() - t.size()) == t) return false;
  return true;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? std::string(sep) : "") + v[i];
  return out;
}

// RULER's NIAH configurations (scripts/synthetic.yaml).
enum class Hay { kEssay, kRepeat, kNeedle };
enum class Kind { kWords, kNumbers, kUuids };
struct NiahCfg {
  Hay hay;
  Kind k, v;
  int nk, nv, nq;
};
const std::map<std::string, NiahCfg>& niah_cfgs() {
  static const std::map<std::string, NiahCfg> m = {
      {"niah_single_1", {Hay::kRepeat, Kind::kWords, Kind::kNumbers, 1, 1, 1}},
      {"niah_single_2", {Hay::kEssay, Kind::kWords, Kind::kNumbers, 1, 1, 1}},
      {"niah_single_3", {Hay::kEssay, Kind::kWords, Kind::kUuids, 1, 1, 1}},
      {"niah_multikey_1", {Hay::kEssay, Kind::kWords, Kind::kNumbers, 4, 1, 1}},
      {"niah_multikey_2", {Hay::kNeedle, Kind::kWords, Kind::kNumbers, 1, 1, 1}},
      {"niah_multikey_3", {Hay::kNeedle, Kind::kUuids, Kind::kUuids, 1, 1, 1}},
      {"niah_multivalue", {Hay::kEssay, Kind::kWords, Kind::kNumbers, 1, 4, 1}},
      {"niah_multiquery", {Hay::kEssay, Kind::kWords, Kind::kNumbers, 4, 1, 4}},
  };
  return m;
}

// Templates and answer prefixes of RULER's scripts/data/synthetic/constants.py (base chat template:
// the answer prefix is appended to the task template).
constexpr const char* kNiahTemplate =
    "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will quiz you about "
    "the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for {query} mentioned in the "
    "provided text? The special magic {type_needle_v} for {query} mentioned in the provided text are";
constexpr const char* kNiahNeedle = "One of the special magic {type_needle_v} for {key} is: {value}.";
constexpr const char* kVtTemplate =
    "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\nQuestion: Find all "
    "variables that are assigned the value {query} in the text above. Answer: According to the chain(s) of variable "
    "assignment in the text above, {num_v} variables are assgined the value {query}, they are: ";  // RULER's spelling
constexpr const char* kCweTemplate =
    "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear "
    "most often.\n{context}\nQuestion: What are the 10 most common words in the above list? Answer: The top 10 words that "
    "appear most often in the list are:";
constexpr const char* kFweTemplate =
    "Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded "
    "words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most "
    "frequently appeared words in the above coded text? Answer: According to the coded text above, the three most frequently "
    "appeared words are:";

// A prompt in text form before tokenisation.
struct Draft {
  std::string text;
  std::vector<size_t> needle_chars;  // byte offset of each needle in text
  size_t answer_needle = std::string::npos;  // index into needle_chars
  std::vector<std::string> refs;
  std::string gold;
  double depth = -1;
};

// Splits a template at {context}; the caller fills the rest.
std::pair<std::string, std::string> split_context(std::string t) {
  const size_t at = t.find("{context}");
  return {t.substr(0, at), t.substr(at + 9)};
}

}  // namespace

std::string_view match_metric_name(MatchMetric m) { return m == MatchMetric::kAll ? "string_match_all" : "string_match_part"; }

const std::vector<TaskInfo>& recall_tasks() {
  static const std::vector<TaskInfo> all = {
      {"niah", 32, MatchMetric::kAll},
      {"niah_single_1", 128, MatchMetric::kAll},   {"niah_single_2", 128, MatchMetric::kAll},
      {"niah_single_3", 128, MatchMetric::kAll},   {"niah_multikey_1", 128, MatchMetric::kAll},
      {"niah_multikey_2", 128, MatchMetric::kAll}, {"niah_multikey_3", 128, MatchMetric::kAll},
      {"niah_multivalue", 128, MatchMetric::kAll}, {"niah_multiquery", 128, MatchMetric::kAll},
      {"vt", 30, MatchMetric::kAll},               {"cwe", 120, MatchMetric::kAll},
      {"fwe", 50, MatchMetric::kAll},
  };
  return all;
}

const TaskInfo& task_info(const std::string& name) {
  std::string known;
  for (const auto& t : recall_tasks()) {
    if (t.name == name) return t;
    known += (known.empty() ? "" : ", ") + t.name;
  }
  throw UsageError(fmt::format("unknown recall task '{}': expected niah, ruler or one of {}", name, known));
}

std::vector<std::string> expand_tasks(const std::string& list) {
  std::vector<std::string> out;
  auto add = [&](const std::string& t) {
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  };
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item.empty()) throw UsageError(fmt::format("empty entry in --tasks '{}'", list));
    if (item == "ruler") {
      for (const auto& t : recall_tasks())
        if (t.name != "niah") add(t.name);
    } else {
      add(task_info(item).name);
    }
  }
  if (out.empty()) throw UsageError("--tasks needs at least one task");
  return out;
}

NiahTemplate niah_template(const std::string& name) {
  if (name == "default")
    return {"default",
            "A special magic number is hidden within the following text. Make sure to memorize it. I will quiz you about the "
            "number afterwards.\n",
            " One of the special magic numbers for {key} is: {value}.",
            "\nWhat is the special magic number for {key} mentioned in the provided text?",
            " The special magic number for {key} mentioned in the provided text is"};
  // The answer prefix repeats the needle's lead-in token for token, so an n-gram copier continues it.
  if (name == "probe")
    return {"probe", "", " The special magic number for {key} is: {value}.", "", " The special magic number for {key} is:"};
  throw UsageError(fmt::format("unknown NIAH template '{}': expected default or probe", name));
}

std::vector<double> depth_points(int n, bool sigmoid) {
  std::vector<double> out;
  if (n <= 0) return out;
  for (int i = 0; i < n; ++i) {
    const double x = n == 1 ? 0 : 100.0 * i / (n - 1);
    double d = std::round(x);
    if (sigmoid && d != 0 && d != 100) d = std::round(1000 * 100 / (1 + std::exp(-0.1 * (d - 50)))) / 1000;
    out.push_back(d);
  }
  return out;
}

uint64_t fnv1a(const std::vector<int32_t>& ids) {
  uint64_t h = kFnv1aOffset;
  for (int32_t id : ids) h = fnv1a_u32(static_cast<uint32_t>(id), h);
  return h;
}

struct Generator::Data {
  std::vector<std::string> words;     // the novels split on whitespace (RULER's essay haystack)
  std::vector<int64_t> sentence_starts;  // word indexes that begin a sentence (> 0)
  std::vector<std::string> adjs, nouns, pool;  // pool: nouns + adjectives + verbs, sorted, unique
  std::string novels;                 // the novels joined by blank lines
  std::once_flag tokens_once;
  std::vector<int32_t> hay_ids;       // tokens of `novels` (NIAH grid), built on first use
  std::vector<uint8_t> hay_sentence_end;
};

Generator::Generator(const TokenCodec& tok, NiahTemplate niah) : tok_(tok), niah_(std::move(niah)), data_(std::make_unique<Data>()) {
  const auto dir = datasets_dir();
  Data& d = *data_;
  for (const char* f : kNovels) d.novels += (d.novels.empty() ? "" : "\n\n") + read_file_bytes(dir / "haystack" / f, "recall data file");
  std::istringstream in(d.novels);
  for (std::string w; in >> w;) {
    if (!d.words.empty() && ends_sentence(d.words.back())) d.sentence_starts.push_back(static_cast<int64_t>(d.words.size()));
    d.words.push_back(std::move(w));
  }
  const auto ww = dir / "ruler" / "wonderwords";
  d.adjs = read_lines(ww / "adjectivelist.txt");
  d.nouns = read_lines(ww / "nounlist.txt");
  d.pool = d.nouns;
  d.pool.insert(d.pool.end(), d.adjs.begin(), d.adjs.end());
  for (auto& v : read_lines(ww / "verblist.txt")) d.pool.push_back(std::move(v));
  std::sort(d.pool.begin(), d.pool.end());
  d.pool.erase(std::unique(d.pool.begin(), d.pool.end()), d.pool.end());
}

Generator::~Generator() = default;

namespace {

std::string random_value(Kind k, Rng& rng, const Generator::Data& d) {
  switch (k) {
    case Kind::kWords: return d.adjs[rng.below(d.adjs.size())] + "-" + d.nouns[rng.below(d.nouns.size())];
    case Kind::kNumbers: return std::to_string(1000000 + rng.below(9000000));
    case Kind::kUuids: {
      uint64_t hi = rng.next(), lo = rng.next();
      hi = (hi & ~0xF000ull) | 0x4000ull;                              // version 4
      lo = (lo & ~(0xC000ull << 48)) | (0x8000ull << 48);              // RFC 4122 variant
      return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF, lo >> 48,
                         lo & 0xFFFFFFFFFFFFull);
    }
  }
  return {};
}

constexpr std::string_view kind_plural(Kind k) { return k == Kind::kWords ? "words" : k == Kind::kNumbers ? "numbers" : "uuids"; }

// RULER's 40 insertion depths: round(linspace(0, 100, 40)).
const std::vector<double>& ruler_depths() {
  static const std::vector<double> d = depth_points(40, false);
  return d;
}

Draft build_niah(const NiahCfg& cfg, int64_t n, Rng& rng, const Generator::Data& d) {
  struct Needle {
    std::string text;
    int key;
    int value;
  };
  std::vector<std::string> keys;
  std::vector<std::vector<std::string>> values;
  std::vector<Needle> needles;
  std::string needle_t = kNiahNeedle;
  replace_all(needle_t, "{type_needle_v}", kind_plural(cfg.v));
  for (int k = 0; k < cfg.nk; ++k) {
    keys.push_back(random_value(cfg.k, rng, d));
    values.emplace_back();
    for (int v = 0; v < cfg.nv; ++v) {
      values.back().push_back(random_value(cfg.v, rng, d));
      std::string t = needle_t;
      replace_all(t, "{key}", keys.back());
      replace_all(t, "{value}", values.back().back());
      needles.push_back({std::move(t), k, v});
    }
  }
  rng.shuffle(needles);
  const std::vector<int64_t> queried = rng.sample(cfg.nk, cfg.nq);

  Draft out;
  std::string tmpl = kNiahTemplate;
  std::string type_v(kind_plural(cfg.v));
  if (cfg.nq * cfg.nv == 1) {  // RULER rewrites the template to the singular
    replace_all(tmpl, "Some", "A");
    replace_all(tmpl, "are all", "is");
    replace_all(tmpl, "are", "is");
    replace_all(tmpl, "answers", "answer");
    type_v.pop_back();
  }
  std::vector<std::string> qkeys;
  for (int64_t i : queried) qkeys.push_back(keys[i]);
  std::string query = qkeys.size() > 1 ? join({qkeys.begin(), qkeys.end() - 1}, ", ") + ", and " + qkeys.back() : qkeys[0];
  replace_all(tmpl, "{type_needle_v}", type_v);
  replace_all(tmpl, "{query}", query);
  auto [head, tail] = split_context(tmpl);

  std::string& text = out.text;
  text = head;
  std::vector<size_t> chars(needles.size());
  if (cfg.hay == Hay::kEssay) {
    // Sentences of the first n words; needle i goes before sentence int(n_sentences * depth_i / 100).
    const auto end = std::lower_bound(d.sentence_starts.begin(), d.sentence_starts.end(), n);
    std::vector<int64_t> starts{0};
    starts.insert(starts.end(), d.sentence_starts.begin(), end);
    const int64_t n_sent = n == 0 ? 0 : static_cast<int64_t>(starts.size());
    std::vector<std::pair<int64_t, double>> at;  // (word index, depth) per needle, sorted
    for (int64_t di : rng.sample(static_cast<int64_t>(ruler_depths().size()), static_cast<int64_t>(needles.size()))) {
      const double depth = ruler_depths()[di];
      const int64_t s = static_cast<int64_t>(n_sent * (depth / 100));
      at.push_back({s < n_sent ? starts[s] : n, depth});
    }
    std::sort(at.begin(), at.end());
    size_t next = 0;
    bool first = true;
    auto put = [&](const std::string& piece) {
      if (!first) text += ' ';
      first = false;
      text += piece;
    };
    for (int64_t w = 0; w <= n; ++w) {
      while (next < at.size() && at[next].first == w) {
        if (!first) text += ' ';
        first = false;
        chars[next] = text.size();
        text += needles[next].text;
        if (needles[next].key == queried[0] && needles[next].value == 0) out.depth = at[next].second;
        ++next;
      }
      if (w < n) put(d.words[w]);
    }
  } else {
    std::vector<int64_t> idx = rng.sample(std::max<int64_t>(n, static_cast<int64_t>(needles.size())), static_cast<int64_t>(needles.size()));
    std::sort(idx.begin(), idx.end(), std::greater<>());  // RULER pairs needles with descending indexes
    std::vector<int64_t> slot_of(needles.size());
    for (size_t i = 0; i < needles.size(); ++i) slot_of[i] = idx[i];
    std::vector<size_t> order(needles.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return slot_of[a] < slot_of[b]; });
    std::string line = kNiahNeedle;
    replace_all(line, "{type_needle_v}", kind_plural(cfg.v));
    size_t next = 0;
    bool first = true;
    for (int64_t j = 0; j <= n; ++j) {
      while (next < order.size() && slot_of[order[next]] == j) {
        const size_t i = order[next++];
        if (!first) text += '\n';
        first = false;
        chars[i] = text.size();
        text += needles[i].text;
        if (needles[i].key == queried[0] && needles[i].value == 0) out.depth = n ? 100.0 * j / n : 0;
      }
      if (j == n) break;
      if (!first) text += '\n';
      first = false;
      if (cfg.hay == Hay::kRepeat) {
        text += kNoise;
      } else {  // every filler line is a distractor needle
        std::string t = line;
        replace_all(t, "{key}", random_value(cfg.k, rng, d));
        replace_all(t, "{value}", random_value(cfg.v, rng, d));
        text += t;
      }
    }
  }
  text += tail;
  out.needle_chars = chars;
  for (size_t i = 0; i < needles.size(); ++i)
    if (needles[i].key == queried[0] && needles[i].value == 0) out.answer_needle = i;
  for (int64_t q : queried)
    for (const auto& v : values[q]) out.refs.push_back(v);
  out.gold = fmt::format(" {}.", join(out.refs, ", "));
  return out;
}

// RULER vt: one chain of num_hops = 4 assignments hidden in n noise lines, with one worked example.
Draft build_vt_body(int64_t n, Rng& rng, std::vector<std::string>* vars, std::string* value, std::vector<size_t>* chars) {
  std::vector<std::string> names;
  while (names.size() < 5) {
    std::string v;
    for (int i = 0; i < 5; ++i) v += static_cast<char>('A' + rng.below(26));
    if (std::find(names.begin(), names.end(), v) == names.end()) names.push_back(v);
  }
  const std::string val = std::to_string(10000 + rng.below(90000));
  std::vector<std::string> chain{fmt::format("VAR {} = {}", names[0], val)};
  for (int i = 0; i < 4; ++i) chain.push_back(fmt::format("VAR {} = VAR {} ", names[i + 1], names[i]));
  std::vector<int64_t> idx = rng.sample(std::max<int64_t>(n, 5), 5);
  std::sort(idx.begin(), idx.end());
  Draft out;
  size_t next = 0;
  bool first = true;
  for (int64_t j = 0; j <= n; ++j) {
    while (next < chain.size() && idx[next] == j) {
      if (!first) out.text += '\n';
      first = false;
      chars->push_back(out.text.size());
      out.text += chain[next++];
    }
    if (j == n) break;
    if (!first) out.text += '\n';
    first = false;
    out.text += kNoise;
  }
  *vars = names;
  *value = val;
  out.depth = n ? 100.0 * idx[0] / n : 0;
  return out;
}

Draft build_vt(int64_t n, Rng& rng) {
  auto fill = [](const std::string& body, const std::string& value) {
    std::string t = kVtTemplate;
    replace_all(t, "{context}", body);
    replace_all(t, "{query}", value);
    replace_all(t, "{num_v}", "5");
    return t;
  };
  std::vector<std::string> ex_vars, vars;
  std::string ex_value, value;
  std::vector<size_t> ex_chars, chars;
  const Draft ex = build_vt_body(25, rng, &ex_vars, &ex_value, &ex_chars);  // ~500 tokens, as RULER's example
  const std::string example = fill(ex.text, ex_value) + join(ex_vars, " ") + "\n\n";
  Draft body = build_vt_body(n, rng, &vars, &value, &chars);
  std::string t = kVtTemplate;
  replace_all(t, "{query}", value);
  replace_all(t, "{num_v}", "5");
  auto [head, tail] = split_context(t);
  Draft out;
  out.text = example + head;
  for (size_t c : chars) out.needle_chars.push_back(out.text.size() + c);
  out.text += body.text + tail;
  out.answer_needle = 0;
  out.depth = body.depth;
  out.refs = vars;
  out.gold = join(vars, " ");
  return out;
}

// n distinct words: the shuffled pool first, then adjective-noun compounds once it runs out.
std::vector<std::string> distinct_words(int64_t n, Rng& rng, const Generator::Data& d) {
  std::vector<std::string> out;
  const int64_t from_pool = std::min<int64_t>(n, static_cast<int64_t>(d.pool.size()));
  for (int64_t i : rng.sample(static_cast<int64_t>(d.pool.size()), from_pool)) out.push_back(d.pool[i]);
  while (static_cast<int64_t>(out.size()) < n) out.push_back(random_value(Kind::kWords, rng, d));
  return out;
}

std::string numbered(const std::vector<std::string>& words) {
  std::string s;
  for (size_t i = 0; i < words.size(); ++i) s += fmt::format("{}{}. {}", i ? " " : "", i + 1, words[i]);
  return s;
}

// RULER cwe: num_cw = 10 common words repeated freq_cw times, the rest freq_ucw times, shuffled.
std::pair<std::string, std::vector<std::string>> cwe_list(int64_t n, int freq_cw, int freq_ucw, Rng& rng, const Generator::Data& d) {
  std::vector<std::string> words = distinct_words(n, rng, d);
  std::vector<std::string> list;
  for (size_t i = 0; i < words.size(); ++i)
    for (int r = 0; r < (i < 10 ? freq_cw : freq_ucw); ++r) list.push_back(words[i]);
  rng.shuffle(list);
  words.resize(std::min<size_t>(10, words.size()));
  return {numbered(list), words};
}

Draft build_cwe(int64_t n, int64_t ctx, Rng& rng, const Generator::Data& d) {
  const bool small = ctx < 4096;
  auto fill = [](const std::string& context) {
    std::string t = kCweTemplate;
    replace_all(t, "{context}", context);
    return t;
  };
  auto [ex_list, ex_answer] = cwe_list(small ? 20 : 40, small ? 3 : 10, small ? 1 : 3, rng, d);
  auto [list, answer] = cwe_list(n, small ? 6 : 30, small ? 1 : 3, rng, d);
  Draft out;
  out.text = fill(ex_list) + " " + numbered(ex_answer) + "\n\n" + fill(list);
  out.refs = answer;
  out.gold = fmt::format(" {}", numbered(answer));
  return out;
}

// RULER fwe: (ctx - tokens_to_generate) / 50 coded words with Zipf counts floor(N k^-2 / zeta(2));
// the most frequent is replaced by "..." noise and ranks 2-4 are the answer.
Draft build_fwe(int64_t n, int64_t ctx, int max_new, Rng& rng) {
  const int64_t vocab = std::max<int64_t>(5, (ctx - max_new) / 50);
  std::vector<std::string> coded;
  std::set<std::string> seen;
  while (static_cast<int64_t>(coded.size()) < vocab) {
    std::string w;
    for (int i = 0; i < 6; ++i) w += static_cast<char>('a' + rng.below(26));
    if (seen.insert(w).second) coded.push_back(w);
  }
  const double zeta2 = std::numbers::pi * std::numbers::pi / 6;
  std::vector<std::string> list;
  for (int64_t k = 1; k <= vocab; ++k) {
    const int64_t count = static_cast<int64_t>(std::floor(n * std::pow(static_cast<double>(k), -2.0) / zeta2));
    for (int64_t r = 0; r < count; ++r) list.push_back(k == 1 ? "..." : coded[k - 1]);
  }
  rng.shuffle(list);
  std::string t = kFweTemplate;
  replace_all(t, "{context}", join(list, " "));
  Draft out;
  out.text = t;
  out.refs = {coded[1], coded[2], coded[3]};
  out.gold = fmt::format(" {}", join(out.refs, " "));
  return out;
}

int64_t min_units(const std::string& task) {
  if (task == "vt") return 5;
  if (task == "cwe") return 10;
  if (task == "fwe") return 27;  // rank 4 appears at least once
  return 0;
}

}  // namespace

RecallSample Generator::generate(const SampleSpec& spec) const {
  const TaskInfo& info = task_info(spec.task);
  return info.name == "niah" ? generate_niah(spec) : generate_ruler(spec);
}

std::vector<RecallSample> Generator::generate_all(const std::vector<SampleSpec>& specs, int threads) const {
  std::vector<RecallSample> out(specs.size());
  ThreadPool pool(threads);
  pool.parallel_for(static_cast<int64_t>(specs.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = generate(specs[i]);
  });
  return out;
}

namespace {

Draft build(const std::string& task, int64_t n, int64_t ctx, int max_new, Rng rng, const Generator::Data& d) {
  if (auto it = niah_cfgs().find(task); it != niah_cfgs().end()) return build_niah(it->second, n, rng, d);
  if (task == "vt") return build_vt(n, rng);
  if (task == "cwe") return build_cwe(n, ctx, rng, d);
  return build_fwe(n, ctx, max_new, rng);
}

int max_new_of(const SampleSpec& s) { return s.max_new_tokens > 0 ? s.max_new_tokens : task_info(s.task).max_new_tokens; }

}  // namespace

void Generator::check_budget(const std::string& task, int64_t ctx, int max_new_tokens) const {
  SampleSpec s{task, ctx, task == "niah" ? 0.0 : -1.0, 0, 0, max_new_tokens};
  const int max_new = max_new_of(s);
  int64_t need = 0;
  if (task == "niah") {
    const int64_t fixed = static_cast<int64_t>(tok_.encode(niah_.prefix).size() + tok_.encode(niah_.needle).size() +
                                               tok_.encode(niah_.question + niah_.answer_prefix).size()) +
                          (tok_.bos_id() ? 1 : 0) + 16;  // a key and value of a few tokens each
    need = fixed + max_new + 1;
  } else {
    const Draft dr = build(task, min_units(task), ctx, max_new, Rng{1}, *data_);
    need = static_cast<int64_t>(tok_.encode(dr.text).size()) + (tok_.bos_id() ? 1 : 0) + max_new;
  }
  if (need > ctx)
    throw UsageError(fmt::format("context {} is too small for task {}: its template, needle(s) and {} answer tokens need {} tokens",
                                 ctx, task, max_new, need));
}

int64_t Generator::haystack_units(const std::string& task, int64_t ctx, int max_new, uint64_t seed) const {
  const std::string key = fmt::format("{}|{}|{}|{}", task, ctx, max_new, seed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = units_.find(key); it != units_.end()) return it->second;
  }
  // RULER sizes the haystack on one draw: the largest n whose prompt + answer budget fits.
  const Rng draw{mix(mix(seed, hash_str(task)), static_cast<uint64_t>(ctx)) ^ 0x5EA2C4ull};
  const int64_t bos = tok_.bos_id() ? 1 : 0;
  auto fits = [&](int64_t n) {
    return bos + static_cast<int64_t>(tok_.encode(build(task, n, ctx, max_new, draw, *data_).text).size()) + max_new <= ctx;
  };
  const int64_t cap = niah_cfgs().count(task) && niah_cfgs().at(task).hay == Hay::kEssay ? static_cast<int64_t>(data_->words.size())
                                                                                            : int64_t{1} << 40;
  int64_t lo = min_units(task);
  if (!fits(lo)) throw UsageError(fmt::format("context {} is too small for task {}", ctx, task));
  // Linear estimate from two sizes, then bracket and bisect on exact token counts.
  const auto count = [&](int64_t n) { return static_cast<double>(tok_.encode(build(task, n, ctx, max_new, draw, *data_).text).size()); };
  const int64_t probe = lo + 64;
  const double t0 = count(lo), t1 = count(probe);
  const double per = std::max(1e-3, (t1 - t0) / (probe - lo));
  int64_t hi = std::min(cap, lo + static_cast<int64_t>((ctx - max_new - bos - t0) / per * 1.02) + 8);
  while (hi < cap && fits(hi)) {
    lo = hi;
    hi = std::min(cap, hi * 2);
  }
  if (hi == cap && fits(hi)) lo = hi;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  std::lock_guard<std::mutex> lock(mu_);
  units_[key] = lo;
  return lo;
}

void Generator::finish(RecallSample& s, const std::vector<size_t>& needle_chars, size_t answer_needle) const {
  if (tok_.bos_id()) s.ids.push_back(*tok_.bos_id());
  const size_t base = s.ids.size();
  const auto body = tok_.encode(s.prompt);
  s.ids.insert(s.ids.end(), body.begin(), body.end());
  // Token offset of each needle: the first token that ends past its first byte.
  std::vector<size_t> order(needle_chars.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return needle_chars[a] < needle_chars[b]; });
  s.needle_tokens.assign(needle_chars.size(), -1);
  size_t end = 0, next = 0;
  for (size_t t = 0; t < body.size() && next < order.size(); ++t) {
    end += tok_.piece(body[t]).size();
    while (next < order.size() && needle_chars[order[next]] < end) s.needle_tokens[order[next++]] = static_cast<int64_t>(base + t);
  }
  if (answer_needle < s.needle_tokens.size()) s.needle_token = s.needle_tokens[answer_needle];
  s.prompt_hash = fnv1a(s.ids);
}

RecallSample Generator::generate_ruler(const SampleSpec& spec) const {
  const int max_new = max_new_of(spec);
  const int64_t n = haystack_units(spec.task, spec.ctx, max_new, spec.seed);
  const Rng rng{mix(mix(mix(spec.seed, hash_str(spec.task)), static_cast<uint64_t>(spec.ctx)), static_cast<uint64_t>(spec.index))};
  const int64_t step = std::max<int64_t>(1, n / 100);
  // Another draw may tokenise longer: step down until it fits, as RULER does.
  for (int64_t used = n;; used = std::max(min_units(spec.task), used - step)) {
    Draft d = build(spec.task, used, spec.ctx, max_new, rng, *data_);
    RecallSample s;
    s.spec = spec;
    s.prompt = std::move(d.text);
    s.max_new_tokens = max_new;
    s.metric = task_info(spec.task).metric;
    s.references = std::move(d.refs);
    s.gold = std::move(d.gold);
    s.needle_depth = d.depth;
    s.haystack_units = used;
    finish(s, d.needle_chars, d.answer_needle);
    if (static_cast<int64_t>(s.ids.size()) + max_new <= spec.ctx || used == min_units(spec.task)) {
      if (static_cast<int64_t>(s.ids.size()) + max_new > spec.ctx)
        throw UsageError(fmt::format("context {} is too small for task {}", spec.ctx, spec.task));
      return s;
    }
  }
}

RecallSample Generator::generate_niah(const SampleSpec& spec) const {
  if (spec.depth < 0 || spec.depth > 100) throw UsageError(fmt::format("needle depth {} is outside 0-100", spec.depth));
  Data& d = *data_;
  std::call_once(d.tokens_once, [&] {
    d.hay_ids = tok_.encode(d.novels);
    d.hay_sentence_end.resize(d.hay_ids.size());
    for (size_t i = 0; i < d.hay_ids.size(); ++i) d.hay_sentence_end[i] = ends_sentence(tok_.piece(d.hay_ids[i]));
  });
  const int max_new = max_new_of(spec);
  // Not seeded by depth: sample i of a length has the same key, value and haystack at every depth,
  // so a depth row of the grid differs only in where the needle sits.
  Rng rng{mix(mix(mix(spec.seed, hash_str("niah")), static_cast<uint64_t>(spec.ctx)), static_cast<uint64_t>(spec.index))};
  const std::string key = random_value(Kind::kWords, rng, d), value = random_value(Kind::kNumbers, rng, d);
  auto fill = [&](std::string t) {
    replace_all(t, "{key}", key);
    replace_all(t, "{value}", value);
    return t;
  };
  std::vector<int32_t> prefix;
  if (tok_.bos_id()) prefix.push_back(*tok_.bos_id());
  for (int32_t id : tok_.encode(fill(niah_.prefix))) prefix.push_back(id);
  const auto needle = tok_.encode(fill(niah_.needle));
  const auto tail = tok_.encode(fill(niah_.question) + fill(niah_.answer_prefix));
  // gkamradt's cut: the haystack is trimmed so that prefix + haystack + needle + tail + answer fit.
  const int64_t len = spec.ctx - max_new - static_cast<int64_t>(prefix.size() + needle.size() + tail.size());
  if (len < 1) throw UsageError(fmt::format("context {} is too small for the NIAH needle and template ({} tokens before any haystack)",
                                            spec.ctx, spec.ctx - len + 1));
  const int64_t total = static_cast<int64_t>(d.hay_ids.size());
  if (len > total) throw UsageError(fmt::format("context {} needs more haystack than the {} tokens of the novels", spec.ctx, total));
  // Sample 0 starts at the top of the novels (as gkamradt); the others at a seeded sentence start.
  int64_t start = 0;
  if (spec.index > 0 && total > len) {
    start = static_cast<int64_t>(rng.below(static_cast<uint64_t>(total - len)));
    while (start > 0 && !d.hay_sentence_end[start - 1]) --start;
  }
  // Insert at token int(len * depth / 100), walked back to just after the previous sentence end.
  const int64_t target = spec.depth >= 100 ? len : static_cast<int64_t>(len * (spec.depth / 100));
  int64_t at = target;
  while (at > 0 && at < len && !d.hay_sentence_end[start + at - 1]) --at;

  RecallSample s;
  s.spec = spec;
  s.max_new_tokens = max_new;
  s.metric = MatchMetric::kAll;
  s.references = {value};
  s.gold = fmt::format(" {}.", value);
  s.ids = prefix;
  s.ids.insert(s.ids.end(), d.hay_ids.begin() + start, d.hay_ids.begin() + start + at);
  s.needle_token = static_cast<int64_t>(s.ids.size());
  s.needle_tokens = {s.needle_token};
  s.needle_target = s.needle_token + (target - at);
  s.needle_length = static_cast<int64_t>(needle.size());
  s.ids.insert(s.ids.end(), needle.begin(), needle.end());
  s.ids.insert(s.ids.end(), d.hay_ids.begin() + start + at, d.hay_ids.begin() + start + len);
  s.ids.insert(s.ids.end(), tail.begin(), tail.end());
  s.needle_depth = 100.0 * static_cast<double>(at) / static_cast<double>(len);
  s.haystack_units = len;
  const size_t skip = tok_.bos_id() ? 1 : 0;
  s.prompt = tok_.decode({s.ids.data() + skip, s.ids.size() - skip});
  s.prompt_hash = fnv1a(s.ids);
  return s;
}

}  // namespace v4b::evals::recall
