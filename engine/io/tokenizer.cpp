#include "engine/io/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <queue>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/errors.h"
#include "engine/io/files.h"

namespace v4b {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Paths

fs::path datasets_dir() {
  if (const char* env = std::getenv("V4BENCH_DATASETS"); env != nullptr && *env != '\0') return fs::path(env);
  // build/v4bench, build/benches/bench_x and an installed bin/ all sit at most three levels below.
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = exe.parent_path();
    for (int up = 0; up < 4 && !dir.empty(); ++up, dir = dir.parent_path()) {
      if (fs::is_directory(dir / "datasets" / "tokenizer", ec)) return dir / "datasets";
      if (dir == dir.parent_path()) break;
    }
  }
#ifdef V4B_DATASETS_DIR
  return fs::path(V4B_DATASETS_DIR);
#else
  return fs::path("datasets");
#endif
}

fs::path default_tokenizer_path() { return datasets_dir() / "tokenizer" / "deepseek_v3"; }

const std::vector<AddedToken>& deepseek_v4_added_tokens() {
  // Ids from spec §5.6; the names in the action..title range follow the V4 task-token table.
  static const std::vector<AddedToken> kTokens = {
      {128821, "<think>", false, false},          {128822, "</think>", false, false},
      {128825, "｜DSML｜", false, false},          {128828, "<｜latest_reminder｜>", false, false},
      {128829, "<｜action｜>", false, false},      {128830, "<｜query｜>", false, false},
      {128831, "<｜authority｜>", false, false},   {128832, "<｜domain｜>", false, false},
      {128833, "<｜task｜>", false, false},        {128834, "<｜political｜>", false, false},
      {128835, "<｜entity｜>", false, false},      {128836, "<｜title｜>", false, false},
      {128845, "<｜read_url｜>", false, false},
  };
  return kTokens;
}

// ---------------------------------------------------------------------------------------------
// UTF-8

namespace {

// Length of the valid character at s[i] (true), or of the maximal invalid subpart there (false).
bool next_char(std::string_view s, size_t i, size_t& len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    len = 1;
    return true;
  }
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 == 0xE0) {
    need = 2, lo = 0xA0;
  } else if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) {
    need = 2;
  } else if (b0 == 0xED) {
    need = 2, hi = 0x9F;  // no surrogates
  } else if (b0 == 0xF0) {
    need = 3, lo = 0x90;
  } else if (b0 >= 0xF1 && b0 <= 0xF3) {
    need = 3;
  } else if (b0 == 0xF4) {
    need = 3, hi = 0x8F;  // nothing above U+10FFFF
  } else {
    len = 1;
    return false;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) {
      len = k;
      return false;
    }
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) {
      len = k;
      return false;
    }
  }
  len = need + 1;
  return true;
}

// Code point of the valid character of length `len` at s[i].
uint32_t code_point(std::string_view s, size_t i, size_t len) {
  const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k])); };
  switch (len) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

}  // namespace

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    size_t len = 0;
    if (next_char(bytes, i, len)) out.append(bytes.substr(i, len));
    else out += "\xEF\xBF\xBD";
    i += len;
  }
  return out;
}

size_t utf8_invalid_offset(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    if (static_cast<unsigned char>(bytes[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    if (!next_char(bytes, i, len)) return i;
    i += len;
  }
  return std::string_view::npos;
}

// ---------------------------------------------------------------------------------------------
// The tokenizer

namespace {

// GPT-2's reversible map from bytes to printable characters: printable Latin-1 bytes map to
// themselves, the other 68 to U+0100.. in byte order. Token texts in tokenizer.json use it.
struct ByteLevelTable {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> to_byte{};
  ByteLevelTable() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? b : next++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteLevelTable& byte_level() {
  static const ByteLevelTable kTable;
  return kTable;
}

// The bytes a token text stands for, or nullopt when a character is outside the byte-level table
// (added tokens like "<｜User｜>", which HF's ByteLevel decoder then passes through as UTF-8).
std::optional<std::string> byte_level_decode(std::string_view token) {
  const auto& t = byte_level();
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    size_t len = 0;
    if (!next_char(token, i, len)) return std::nullopt;
    const uint32_t cp = code_point(token, i, len);
    if (cp >= t.to_byte.size() || t.to_byte[cp] < 0) return std::nullopt;
    out += static_cast<char>(t.to_byte[cp]);
    i += len;
  }
  return out;
}

// HF's BPE merges keyed by (left id, right id): open addressing, so a lookup is one multiply and
// usually one probe.
class MergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t id = 0;
  };
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Entry{});
    mask_ = cap - 1;
  }
  // A later duplicate replaces an earlier one, as HF's HashMap collect does.
  void insert(int32_t a, int32_t b, int32_t rank, int32_t id) {
    const uint64_t key = make_key(a, b);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty || slots_[i].key == key) {
        slots_[i] = {key, rank, id};
        return;
      }
    }
  }
  const Entry* find(int32_t a, int32_t b) const {
    const uint64_t key = make_key(a, b);
    for (size_t i = hash(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i];
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ULL;
  static uint64_t make_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  size_t hash(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 20) & mask_; }
  std::vector<Entry> slots_;
  size_t mask_ = 0;
};

// Leftmost-longest matching of added tokens, as HF's Aho-Corasick (MatchKind::LeftmostLongest).
class TokenMatcher {
 public:
  void add(std::string_view text, int32_t id) {
    if (text.empty()) return;
    if (nodes_.empty()) nodes_.push_back(-1);
    first_[static_cast<unsigned char>(text[0])] = true;
    int32_t node = 0;
    for (const char c : text) {
      const uint64_t key = edge_key(node, c);
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        nodes_.push_back(-1);
        it = edges_.emplace(key, static_cast<int32_t>(nodes_.size() - 1)).first;
      }
      node = it->second;
    }
    nodes_[node] = id;
  }
  bool empty() const { return nodes_.empty(); }
  // The leftmost match at or after `from`: sets start/len/id and returns true.
  bool find(std::string_view s, size_t from, size_t& start, size_t& len, int32_t& id) const {
    if (nodes_.empty()) return false;
    for (size_t i = from; i < s.size(); ++i) {
      if (!first_[static_cast<unsigned char>(s[i])]) continue;
      int32_t node = 0;
      size_t best = 0;
      for (size_t j = i; j < s.size(); ++j) {
        const auto it = edges_.find(edge_key(node, s[j]));
        if (it == edges_.end()) break;
        node = it->second;
        if (nodes_[node] >= 0) best = j + 1 - i, id = nodes_[node];
      }
      if (best > 0) {
        start = i, len = best;
        return true;
      }
    }
    return false;
  }

 private:
  static uint64_t edge_key(int32_t node, char c) {
    return (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(c);
  }
  std::array<bool, 256> first_{};
  std::vector<int32_t> nodes_;  // token id ending at each node, or -1
  std::unordered_map<uint64_t, int32_t> edges_;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// One pre-tokenizer step: a regex Split, or ByteLevel (optional prefix space, optional GPT-2 split).
struct Stage {
  pcre2_code* re = nullptr;  // null: no split at this stage
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

constexpr size_t kMaxCachedWord = 256;     // longer words are merged every time
constexpr size_t kMaxCacheEntries = 1 << 18;
constexpr size_t kSmallWord = 128;         // up to this many symbols: rank scan; beyond: heap

// Everything one thread needs to encode with one tokenizer; PCRE2 match data is not shareable.
struct ThreadState {
  explicit ThreadState(uint64_t s) : serial(s) {
    md = pcre2_match_data_create(1, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (md == nullptr || mctx == nullptr || jit_stack == nullptr) throw std::bad_alloc();
    pcre2_jit_stack_assign(mctx, nullptr, jit_stack);
  }
  ~ThreadState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
  }
  ThreadState(const ThreadState&) = delete;
  ThreadState& operator=(const ThreadState&) = delete;
  void clear_cache() {
    cache.clear();
    arena.clear();
  }

  uint64_t serial;
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  // word bytes -> [offset, offset + count) in arena
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash, std::equal_to<>> cache;
  std::vector<int32_t> arena;
};

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw UsageError(fmt::format("tokenizer '{}': {}", origin, what));
}

// HF compiles these regexes with Oniguruma, whose \s is Unicode White_Space; PCRE2's \s under UCP
// lacks U+0085 (NEL), so it is added explicitly. \S inside a character class is left as is.
std::string translate_regex(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  bool in_class = false;
  size_t class_start = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[i + 1];
      if (n == 's') out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      else if (n == 'S' && !in_class) out += "[^\\s\\x{85}]";
      else out.append(p.substr(i, 2));
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      class_start = out.size() + 1;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i], ++class_start;
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
      const size_t end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(p.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']' && out.size() != class_start) in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

struct Tokenizer::Impl {
  std::string origin;
  uint64_t serial = 0;

  // Vocabulary in the file's own spelling, and the bytes each id decodes to.
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_ids;
  std::vector<std::string> id_token;
  std::vector<std::string> id_bytes;
  std::vector<char> assigned;
  int32_t n_assigned = 0;

  // BPE over raw bytes: the id of each single byte, merges by id pair, whole words by bytes.
  std::array<int32_t, 256> byte_id{};
  MergeTable merges;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> bytes_ids;
  bool ignore_merges = false;
  int32_t unk_id = -1;

  std::vector<AddedToken> added;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> added_ids;
  std::vector<AddedToken> v4_added;
  TokenMatcher raw_matcher, normalized_matcher;

  std::vector<Stage> stages;
  std::optional<int32_t> bos, eos;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    for (auto& s : stages) pcre2_code_free(s.re);
  }

  ThreadState& state() const {
    // A handful of slots: tokenizers are few, and a stale slot is only a cache miss.
    thread_local std::vector<std::unique_ptr<ThreadState>> slots;
    for (auto& s : slots)
      if (s->serial == serial) return *s;
    if (slots.size() >= 4) slots.erase(slots.begin());
    slots.push_back(std::make_unique<ThreadState>(serial));
    return *slots.back();
  }

  void set_token(int32_t id, const std::string& text) {
    if (static_cast<size_t>(id) >= id_token.size()) {
      id_token.resize(id + 1);
      id_bytes.resize(id + 1);
      assigned.resize(id + 1, 0);
    }
    if (!assigned[id]) ++n_assigned;
    assigned[id] = 1;
    id_token[id] = text;
    // HF's ByteLevel decoder: bytes when every character is in the table, else the UTF-8 text.
    id_bytes[id] = byte_level_decode(text).value_or(text);
  }

  std::optional<int32_t> find_token(std::string_view text) const {
    if (const auto a = added_ids.find(text); a != added_ids.end()) return a->second;
    const auto it = token_ids.find(text);
    if (it == token_ids.end()) return std::nullopt;
    return it->second;
  }

  // ---- encoding ----

  void encode(std::string_view text, ThreadState& ts, std::vector<int32_t>& out) const {
    // Tokens that bypass normalisation are split out first, then the others, as HF does.
    split_added(text, raw_matcher, [&](std::string_view seg, int32_t id) {
      if (id >= 0) return out.push_back(id);
      split_added(seg, normalized_matcher, [&](std::string_view seg2, int32_t id2) {
        if (id2 >= 0) return out.push_back(id2);
        pretokenize(seg2, 0, ts, out);
      });
    });
  }

  template <typename F>
  static void split_added(std::string_view s, const TokenMatcher& m, F&& emit) {
    size_t pos = 0, start = 0, len = 0;
    int32_t id = -1;
    while (m.find(s, pos, start, len, id)) {
      if (start > pos) emit(s.substr(pos, start - pos), -1);
      emit(s.substr(start, len), id);
      pos = start + len;
    }
    if (pos < s.size()) emit(s.substr(pos), -1);
  }

  void pretokenize(std::string_view piece, size_t k, ThreadState& ts, std::vector<int32_t>& out) const {
    if (piece.empty()) return;
    if (k == stages.size()) return bpe(piece, ts, out);
    const Stage& st = stages[k];
    if (st.add_prefix_space && piece.front() != ' ') {
      std::string spaced;
      spaced.reserve(piece.size() + 1);
      spaced += ' ';
      spaced.append(piece);
      return split(st, spaced, k, ts, out);
    }
    split(st, piece, k, ts, out);
  }

  void split(const Stage& st, std::string_view piece, size_t k, ThreadState& ts, std::vector<int32_t>& out) const {
    if (st.re == nullptr) return pretokenize(piece, k + 1, ts, out);
    if (st.behavior == SplitBehavior::kIsolated) {
      // The common case, streamed: every match and every gap is a piece of its own.
      for_each_match(st.re, piece, ts, [&](size_t b, size_t e, bool) { pretokenize(piece.substr(b, e - b), k + 1, ts, out); });
      return;
    }
    std::vector<std::pair<size_t, size_t>> parts;
    bool previous_match = false;
    for_each_match(st.re, piece, ts, [&](size_t b, size_t e, bool is_match) {
      is_match = is_match != st.invert;
      switch (st.behavior) {
        case SplitBehavior::kRemoved:
          if (!is_match) parts.emplace_back(b, e);
          break;
        case SplitBehavior::kIsolated: parts.emplace_back(b, e); break;
        case SplitBehavior::kMergedWithPrevious:
          if (is_match && !previous_match && !parts.empty()) parts.back().second = e;
          else parts.emplace_back(b, e);
          break;
        case SplitBehavior::kMergedWithNext:
          // A match joins the piece after it: collect, then fold below.
          parts.emplace_back(b, is_match ? e | (size_t{1} << 63) : e);
          break;
        case SplitBehavior::kContiguous:
          if (is_match == previous_match && !parts.empty()) parts.back().second = e;
          else parts.emplace_back(b, e);
          break;
      }
      previous_match = is_match;
    });
    if (st.behavior == SplitBehavior::kMergedWithNext) {
      // HF folds from the right: a match not preceded (on its right) by a match joins the next piece.
      std::vector<std::pair<size_t, size_t>> folded;
      bool prev = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        const bool is_match = (it->second >> 63) != 0;
        const size_t b = it->first, e = it->second & ~(size_t{1} << 63);
        if (is_match && !prev && !folded.empty()) folded.back().first = b;
        else folded.emplace_back(b, e);
        prev = is_match;
      }
      parts.assign(folded.rbegin(), folded.rend());
    }
    for (const auto& [b, e] : parts) pretokenize(piece.substr(b, e - b), k + 1, ts, out);
  }

  // Calls f(begin, end, is_match) for every match and every gap between, in order.
  template <typename F>
  void for_each_match(const pcre2_code* re, std::string_view s, ThreadState& ts, F&& f) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t pos = 0, prev = 0;
    while (pos <= s.size()) {
      const int rc = pcre2_match(re, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, ts.md, ts.mctx);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        throw std::runtime_error(fmt::format("tokenizer '{}': regex match failed: {}", origin, reinterpret_cast<char*>(msg)));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ts.md);
      const size_t b = ov[0], e = ov[1];
      if (b > prev) f(prev, b, false);
      if (e > b) {
        f(b, e, true);
        prev = e;
        pos = e;
      } else {  // an empty match: step over one character
        if (b >= s.size()) break;
        size_t len = 1;
        next_char(s, b, len);
        pos = b + len;
        prev = b;
      }
    }
    if (prev < s.size()) f(prev, s.size(), false);
  }

  void bpe(std::string_view word, ThreadState& ts, std::vector<int32_t>& out) const {
    if (word.size() == 1) {
      push_byte(static_cast<unsigned char>(word[0]), out);
      return;
    }
    const bool cacheable = word.size() <= kMaxCachedWord;
    if (cacheable) {
      const auto it = ts.cache.find(word);
      if (it != ts.cache.end()) {
        out.insert(out.end(), ts.arena.begin() + it->second.first, ts.arena.begin() + it->second.first + it->second.second);
        return;
      }
    }
    const size_t before = out.size();
    merge_word(word, out);
    if (cacheable) {
      if (ts.cache.size() >= kMaxCacheEntries) ts.clear_cache();
      const auto off = static_cast<uint32_t>(ts.arena.size());
      ts.arena.insert(ts.arena.end(), out.begin() + static_cast<std::ptrdiff_t>(before), out.end());
      ts.cache.emplace(std::string(word), std::make_pair(off, static_cast<uint32_t>(out.size() - before)));
    }
  }

  void push_byte(unsigned char b, std::vector<int32_t>& out) const {
    if (byte_id[b] >= 0) out.push_back(byte_id[b]);
    else if (unk_id >= 0) out.push_back(unk_id);  // without an unk token HF drops the byte
  }

  void merge_word(std::string_view word, std::vector<int32_t>& out) const {
    if (ignore_merges) {
      const auto it = bytes_ids.find(word);
      if (it != bytes_ids.end()) return out.push_back(it->second);
    }
    if (word.size() <= kSmallWord) return merge_small(word, out);
    merge_large(word, out);
  }

  // Repeatedly merges the adjacent pair of lowest rank, leftmost first: the order HF's priority
  // queue produces. The pair ranks are kept in an array so each merge re-ranks only its neighbours.
  void merge_small(std::string_view word, std::vector<int32_t>& out) const {
    std::array<int32_t, kSmallWord> sym{}, rank{}, into{};
    size_t n = 0;
    for (const char c : word) {
      const int32_t id = byte_id[static_cast<unsigned char>(c)];
      if (id >= 0) sym[n++] = id;
      else if (unk_id >= 0) sym[n++] = unk_id;
    }
    auto rank_pair = [&](size_t i) {
      const MergeTable::Entry* m = merges.find(sym[i], sym[i + 1]);
      rank[i] = m != nullptr ? m->rank : INT32_MAX;
      into[i] = m != nullptr ? m->id : -1;
    };
    for (size_t i = 0; i + 1 < n; ++i) rank_pair(i);
    while (n > 1) {
      size_t best = 0;
      for (size_t i = 1; i + 1 < n; ++i)
        if (rank[i] < rank[best]) best = i;
      if (rank[best] == INT32_MAX) break;
      sym[best] = into[best];
      for (size_t i = best + 1; i + 1 < n; ++i) {
        sym[i] = sym[i + 1];
        rank[i] = rank[i + 1];
        into[i] = into[i + 1];
      }
      --n;
      if (best + 1 < n) rank_pair(best);
      if (best > 0) rank_pair(best - 1);
    }
    out.insert(out.end(), sym.begin(), sym.begin() + static_cast<std::ptrdiff_t>(n));
  }

  // HF's algorithm for long words: a min-heap of (rank, position) over a linked list of symbols,
  // skipping stale entries. O(n log n), so a megabyte without a split point stays cheap.
  void merge_large(std::string_view word, std::vector<int32_t>& out) const {
    struct Sym {
      int32_t id, prev, next;
      bool alive;
    };
    struct Cand {
      int32_t rank, pos, id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::vector<Sym> s;
    s.reserve(word.size());
    for (const char c : word) {
      int32_t id = byte_id[static_cast<unsigned char>(c)];
      if (id < 0) id = unk_id;
      if (id < 0) continue;
      const auto i = static_cast<int32_t>(s.size());
      s.push_back({id, i - 1, i + 1, true});
    }
    if (s.empty()) return;
    s.back().next = -1;
    std::priority_queue<Cand, std::vector<Cand>, std::greater<>> q;
    auto push = [&](int32_t pos) {
      const int32_t nx = s[pos].next;
      if (nx < 0) return;
      if (const auto* m = merges.find(s[pos].id, s[nx].id)) q.push({m->rank, pos, m->id});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(s.size()); ++i) push(i);
    while (!q.empty()) {
      const Cand c = q.top();
      q.pop();
      Sym& l = s[c.pos];
      if (!l.alive || l.next < 0) continue;
      Sym& r = s[l.next];
      const auto* m = merges.find(l.id, r.id);
      if (m == nullptr || m->rank != c.rank || m->id != c.id) continue;  // stale
      l.id = c.id;
      r.alive = false;
      l.next = r.next;
      if (r.next >= 0) s[r.next].prev = c.pos;
      if (l.prev >= 0) push(l.prev);
      push(c.pos);
    }
    for (int32_t i = 0; i >= 0; i = s[i].next) out.push_back(s[i].id);
  }
};

namespace {

std::atomic<uint64_t> g_next_serial{1};


std::string type_of(const json& j) { return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : ""; }

// An optional boolean field: absent or null gives `def`, anything but a boolean is an error.
bool get_bool(const json& j, const char* key, bool def, const std::string& origin, const char* where) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) fail(origin, fmt::format("{}.{} is {}, expected true or false", where, key, j[key].dump()));
  return j[key].get<bool>();
}

SplitBehavior parse_behavior(const json& j, const std::string& origin) {
  const std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  fail(origin, fmt::format("pre_tokenizer Split behavior '{}' is not one of Removed, Isolated, MergedWithPrevious, "
                           "MergedWithNext, Contiguous",
                           j.is_string() ? b : j.dump()));
}

pcre2_code* compile_regex(const std::string& pattern, bool literal, const std::string& origin) {
  const std::string p = literal ? pattern : translate_regex(pattern);
  int err = 0;
  PCRE2_SIZE at = 0;
  const uint32_t flags = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);  // LITERAL refuses UCP
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), flags, &err, &at, nullptr);
  if (re == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail(origin, fmt::format("pre_tokenizer regex {} does not compile: {} (at offset {})", json(pattern).dump(),
                             reinterpret_cast<char*>(msg), at));
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // without JIT, pcre2_match interprets: slower, same result
  return re;
}

const char* const kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void parse_pre_tokenizer(const json& j, Tokenizer::Impl& t, bool& byte_level_seen) {
  if (j.is_null()) return;
  const std::string type = type_of(j);
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      fail(t.origin, "pre_tokenizer Sequence has no 'pretokenizers' array");
    for (const auto& p : j["pretokenizers"]) parse_pre_tokenizer(p, t, byte_level_seen);
    return;
  }
  if (type == "Split") {
    Stage st;
    const json& pat = j.value("pattern", json());
    if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string()) {
      st.re = compile_regex(pat["Regex"].get<std::string>(), false, t.origin);
    } else if (pat.is_object() && pat.contains("String") && pat["String"].is_string()) {
      st.re = compile_regex(pat["String"].get<std::string>(), true, t.origin);
    } else {
      fail(t.origin, "pre_tokenizer Split needs a pattern {\"Regex\": ...} or {\"String\": ...}");
    }
    t.stages.push_back(st);  // owned by t from here, freed by ~Impl even if the next check throws
    t.stages.back().behavior = parse_behavior(j.value("behavior", json()), t.origin);
    t.stages.back().invert = get_bool(j, "invert", false, t.origin, "pre_tokenizer Split");
    return;
  }
  if (type == "ByteLevel") {
    byte_level_seen = true;
    Stage st;
    st.add_prefix_space = get_bool(j, "add_prefix_space", false, t.origin, "pre_tokenizer ByteLevel");
    if (get_bool(j, "use_regex", true, t.origin, "pre_tokenizer ByteLevel")) st.re = compile_regex(kGpt2Regex, false, t.origin);
    if (st.re != nullptr || st.add_prefix_space) t.stages.push_back(st);
    return;
  }
  fail(t.origin, fmt::format("pre_tokenizer type '{}' is not supported (Sequence, Split, ByteLevel)",
                             type.empty() ? j.dump() : type));
}

void check_normalizer(const json& j, const std::string& origin) {
  if (j.is_null()) return;
  const std::string type = type_of(j);
  if (type == "Sequence" && j.contains("normalizers") && j["normalizers"].is_array()) {
    for (const auto& n : j["normalizers"]) check_normalizer(n, origin);
    return;
  }
  fail(origin, fmt::format("normalizer '{}' is not supported (only none or an empty Sequence)", type.empty() ? j.dump() : type));
}

void check_decoder(const json& j, const std::string& origin) {
  if (j.is_null()) return;
  const std::string type = type_of(j);
  if (type == "ByteLevel") return;
  if (type == "Sequence" && j.contains("decoders") && j["decoders"].is_array()) {
    for (const auto& d : j["decoders"]) check_decoder(d, origin);
    return;
  }
  fail(origin, fmt::format("decoder '{}' is not supported (only ByteLevel)", type.empty() ? j.dump() : type));
}

int32_t parse_id(const json& v, const std::string& origin, const std::string& where) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= (int64_t{1} << 24))
    fail(origin, fmt::format("{} has id {}, expected an integer in [0, 16777216)", where, v.dump()));
  return static_cast<int32_t>(v.get<int64_t>());
}

// "<｜begin▁of▁sentence｜>" or {"content": "..."} from tokenizer_config.json.
std::string config_token(const json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key)) return {};
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return {};
}

}  // namespace

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& origin, const TokenizerOptions& opts,
                               const std::string& config_json) {
  if (json_text.find_first_not_of(" \t\r\n") == std::string_view::npos) fail(origin, "the file is empty");
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    if (e.byte >= json_text.size()) fail(origin, fmt::format("the JSON is truncated (input ends at byte {})", json_text.size()));
    fail(origin, fmt::format("not valid JSON (parse error at byte {})", e.byte));
  }
  if (!j.is_object()) fail(origin, "the top level is not a JSON object");

  auto t = std::make_shared<Impl>();
  t->origin = origin;
  t->serial = g_next_serial.fetch_add(1);

  if (!j.contains("model") || !j["model"].is_object()) fail(origin, "'model' is missing");
  const json& model = j["model"];
  const std::string mtype = model.contains("type") ? (model["type"].is_string() ? model["type"].get<std::string>() : model["type"].dump()) : "BPE";
  if (mtype != "BPE") fail(origin, fmt::format("model type '{}' is not supported (only BPE)", mtype));
  if (!model.contains("vocab")) fail(origin, "'model.vocab' is missing");
  if (!model["vocab"].is_object()) fail(origin, "'model.vocab' is not an object of token -> id");
  if (!model.contains("merges")) fail(origin, "'model.merges' is missing");
  if (!model["merges"].is_array()) fail(origin, "'model.merges' is not an array");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
      fail(origin, fmt::format("model.{} is not supported", key));
  t->ignore_merges = get_bool(model, "ignore_merges", false, origin, "model");

  const auto& vocab = model["vocab"];
  t->token_ids.reserve(vocab.size());
  t->id_token.reserve(vocab.size() + 1024);
  t->id_bytes.reserve(vocab.size() + 1024);
  t->assigned.reserve(vocab.size() + 1024);
  for (const auto& [text, v] : vocab.items()) {
    const int32_t id = parse_id(v, origin, fmt::format("model.vocab entry {}", json(text).dump()));
    t->token_ids.emplace(text, id);
    t->set_token(id, text);
    if (t->ignore_merges) t->bytes_ids.emplace(t->id_bytes[id], id);
  }
  if (t->token_ids.empty()) fail(origin, "'model.vocab' is empty");
  for (uint32_t b = 0; b < 256; ++b) {
    std::string text;
    if (const uint32_t cp = byte_level().to_cp[b]; cp < 0x80) {
      text += static_cast<char>(cp);
    } else {
      text += static_cast<char>(0xC0 | (cp >> 6));
      text += static_cast<char>(0x80 | (cp & 0x3F));
    }
    const auto it = t->token_ids.find(text);
    t->byte_id[b] = it != t->token_ids.end() ? it->second : -1;
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const auto it = t->token_ids.find(model["unk_token"].get<std::string>());
    if (it != t->token_ids.end()) t->unk_id = it->second;
  }

  const auto& merges = model["merges"];
  t->merges.reserve(merges.size());
  int32_t rank = 0;
  std::string joined;
  for (const auto& m : merges) {
    std::string_view a, b;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail(origin, fmt::format("model.merges[{}] = {} is not two tokens separated by one space", rank, m.dump()));
      a = std::string_view(s).substr(0, sp), b = std::string_view(s).substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get_ref<const std::string&>(), b = m[1].get_ref<const std::string&>();
    } else {
      fail(origin, fmt::format("model.merges[{}] is neither \"a b\" nor [\"a\", \"b\"]", rank));
    }
    joined.assign(a);
    joined.append(b);
    const auto ia = t->token_ids.find(a), ib = t->token_ids.find(b), im = t->token_ids.find(joined);
    if (ia == t->token_ids.end() || ib == t->token_ids.end() || im == t->token_ids.end())
      fail(origin, fmt::format("model.merges[{}] = {} uses a token missing from model.vocab", rank, m.dump()));
    t->merges.insert(ia->second, ib->second, rank, im->second);
    ++rank;
  }

  check_normalizer(j.value("normalizer", json()), origin);
  bool byte_level_seen = false;
  parse_pre_tokenizer(j.value("pre_tokenizer", json()), *t, byte_level_seen);
  const json decoder = j.value("decoder", json());
  check_decoder(decoder, origin);
  if (!byte_level_seen && type_of(decoder) != "ByteLevel")
    fail(origin, "only byte-level BPE is supported, and neither the pre_tokenizer nor the decoder is ByteLevel");

  const json added = j.value("added_tokens", json::array());
  if (!added.is_array()) fail(origin, "'added_tokens' is not an array");
  for (size_t i = 0; i < added.size(); ++i) {
    const json& a = added[i];
    if (!a.is_object() || !a.contains("id") || !a.contains("content") || !a["content"].is_string())
      fail(origin, fmt::format("added_tokens[{}] needs an integer 'id' and a string 'content'", i));
    AddedToken tok;
    tok.id = parse_id(a["id"], origin, fmt::format("added_tokens[{}]", i));
    tok.content = a["content"].get<std::string>();
    tok.special = get_bool(a, "special", false, origin, "added_tokens[]");
    tok.normalized = get_bool(a, "normalized", !tok.special, origin, "added_tokens[]");
    if (tok.content.empty()) continue;
    t->added.push_back(tok);
    t->added_ids[tok.content] = tok.id;
  }

  // V4's chat tokens, on a DeepSeek vocabulary that lacks them and has their ids free.
  if (opts.add_v4_tokens && t->find_token("<｜begin▁of▁sentence｜>") == 0) {
    for (const auto& tok : deepseek_v4_added_tokens()) {
      const bool id_taken = static_cast<size_t>(tok.id) < t->assigned.size() && t->assigned[tok.id];
      if (t->find_token(tok.content) || id_taken) continue;
      t->added.push_back(tok);
      t->added_ids[tok.content] = tok.id;
      t->v4_added.push_back(tok);
    }
  }
  for (const auto& tok : t->added) {
    t->set_token(tok.id, tok.content);
    (tok.normalized ? t->normalized_matcher : t->raw_matcher).add(tok.content, tok.id);
  }

  // BOS/EOS: tokenizer_config.json when given, else the names DeepSeek and Llama use.
  json cfg;
  if (!config_json.empty()) {
    try {
      cfg = json::parse(config_json);
    } catch (const json::parse_error& e) {
      throw UsageError(fmt::format("tokenizer_config.json beside '{}' is not valid JSON (parse error at byte {})", origin, e.byte));
    }
  }
  auto pick = [&](const char* key, std::initializer_list<const char*> fallbacks) -> std::optional<int32_t> {
    if (const std::string c = config_token(cfg, key); !c.empty()) return t->find_token(c);
    for (const char* f : fallbacks)
      if (auto id = t->find_token(f)) return id;
    return std::nullopt;
  };
  t->bos = pick("bos_token", {"<｜begin▁of▁sentence｜>", "<|begin_of_text|>", "<s>"});
  t->eos = pick("eos_token", {"<｜end▁of▁sentence｜>", "<|end_of_text|>", "</s>"});
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::load(const fs::path& path_in, const TokenizerOptions& opts) {
  fs::path path = path_in.empty() ? default_tokenizer_path() : path_in;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(path / "tokenizer.json", ec)) path /= "tokenizer.json";
    else if (fs::exists(path / "tokenizer.json.gz", ec)) path /= "tokenizer.json.gz";
    else throw UsageError(fmt::format("no tokenizer.json or tokenizer.json.gz in directory '{}'", path.string()));
  }
  const std::string origin = path.string();
  std::string data = read_file_bytes(path, "tokenizer file");
  if (is_gzip(data)) data = gunzip(data, fmt::format("tokenizer '{}'", origin));
  std::string config;
  const fs::path cfg_path = path.parent_path() / "tokenizer_config.json";
  if (fs::exists(cfg_path, ec)) config = read_file_bytes(cfg_path, "tokenizer config");
  return from_json(data, origin, opts, config);
}

Tokenizer Tokenizer::for_checkpoint(const fs::path& checkpoint_dir, const TokenizerOptions& opts) {
  std::error_code ec;
  if (fs::exists(checkpoint_dir / "tokenizer.json", ec)) return load(checkpoint_dir / "tokenizer.json", opts);
  return load({}, opts);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  if (const size_t bad = utf8_invalid_offset(text); bad != std::string_view::npos)
    throw UsageError(fmt::format("text to tokenize is not valid UTF-8 (byte {} of {})", bad, text.size()));
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_bos) {
    if (!impl_->bos) throw UsageError(fmt::format("tokenizer '{}' has no BOS token", impl_->origin));
    out.push_back(*impl_->bos);
  }
  impl_->encode(text, impl_->state(), out);
  return out;
}

std::string Tokenizer::decode_bytes(std::span<const int32_t> ids) const {
  std::string out;
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw UsageError(fmt::format("token id {} is out of range (this vocabulary has ids 0..{})", id, vocab_size() - 1));
    if (!impl_->assigned[id]) throw UsageError(fmt::format("token id {} has no token in this vocabulary", id));
    out += impl_->id_bytes[id];
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const { return utf8_lossy(decode_bytes(ids)); }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const { return impl_->find_token(token); }

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size() || !impl_->assigned[id]) return std::nullopt;
  return impl_->id_token[id];
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_token.size()); }
int32_t Tokenizer::n_tokens() const { return impl_->n_assigned; }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }
const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }
const std::vector<AddedToken>& Tokenizer::v4_tokens_added() const { return impl_->v4_added; }
const std::string& Tokenizer::source() const { return impl_->origin; }
void Tokenizer::clear_thread_cache() const { impl_->state().clear_cache(); }

}  // namespace v4b
