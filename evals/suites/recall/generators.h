// Prompt generators of the recall suite: the NIAH depth x length grid (gkamradt's construction, in
// tokens) and RULER's synthetic tasks (harness-anchors §3.1: templates, answer prefixes, token
// budgets). Every prompt is a pure function of (task, ctx, depth, sample index, seed, template), so
// runs, resumes and thread counts agree byte for byte. Lengths are counted in the target tokenizer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "evals/backends/token_codec.h"

namespace v4b::evals::recall {

enum class MatchMetric { kAll, kPart };  // RULER string_match_all / string_match_part
std::string_view match_metric_name(MatchMetric m);

struct TaskInfo {
  std::string name;
  int max_new_tokens = 0;  // RULER tokens_to_generate
  MatchMetric metric = MatchMetric::kAll;
};
// The NIAH grid task ("niah") followed by the eleven RULER synthetic tasks in RULER's order.
const std::vector<TaskInfo>& recall_tasks();
const TaskInfo& task_info(const std::string& name);  // throws UsageError listing the tasks
// "niah", "ruler" (the eleven), task names, comma-separated; duplicates dropped, order kept.
std::vector<std::string> expand_tasks(const std::string& list);

// The NIAH grid's text pieces; {key} and {value} are substituted. The needle is inserted into the
// haystack; the prompt is prefix + haystack-with-needle + question + answer_prefix, and the model's
// continuation is scored against the value.
struct NiahTemplate {
  std::string name, prefix, needle, question, answer_prefix;
};
// "default": RULER's single-needle wording (a question the model answers after an answer prefix).
// "probe": for copy-only probe models: no question; the prompt ends with the needle's own lead-in
// ("The special magic number for KEY is:"), so a model that copies continues with the value.
NiahTemplate niah_template(const std::string& name);  // throws UsageError

// gkamradt's depth spacings over [0, 100]: round(linspace(0, 100, n)) or the logistic (L=100,
// x0=50, k=0.1) of those points, rounded to 3 decimals, keeping 0 and 100.
std::vector<double> depth_points(int n, bool sigmoid);

struct SampleSpec {
  std::string task;
  int64_t ctx = 0;        // budget: prompt tokens (incl. BOS) + max_new_tokens <= ctx
  double depth = -1;      // NIAH grid: needle depth in percent; RULER tasks: -1 (random, as RULER)
  int index = 0;          // sample index within its cell
  uint64_t seed = 0;
  int max_new_tokens = 0;  // 0: the task's default
};

struct RecallSample {
  SampleSpec spec;
  std::string prompt;            // the text, ending with the answer prefix (what an endpoint receives)
  std::vector<int32_t> ids;      // BOS (when the vocabulary has one) + the tokens of `prompt`
  std::vector<std::string> references;
  std::string gold;              // the expected continuation, teacher-forced for KL / top-1
  MatchMetric metric = MatchMetric::kAll;
  int max_new_tokens = 0;
  int64_t needle_token = -1;     // token offset (in ids) of the first needle the answer needs; -1: none
  std::vector<int64_t> needle_tokens;  // every needle / chain statement inserted
  double needle_depth = -1;      // where that needle landed, in percent of the haystack
  int64_t needle_target = -1;    // NIAH grid: the offset the depth asked for, before the walk back to a sentence end
  int64_t needle_length = 0;     // NIAH grid: tokens of the needle
  int64_t haystack_units = 0;    // words, lines or list entries of haystack used
  uint64_t prompt_hash = 0;      // FNV-1a 64 of the ids
};

// One generator per tokenizer; thread-safe. Loads the novels and word lists from datasets/ once.
class Generator {
 public:
  Generator(const TokenCodec& tok, NiahTemplate niah);
  ~Generator();

  RecallSample generate(const SampleSpec& spec) const;
  // Fans `specs` out over `threads` threads (0: all cores); the result does not depend on it.
  std::vector<RecallSample> generate_all(const std::vector<SampleSpec>& specs, int threads) const;
  // Tokens a prompt of this task needs before any haystack (template, needles, answer budget);
  // a ctx below it is refused with a UsageError naming the task.
  void check_budget(const std::string& task, int64_t ctx, int max_new_tokens = 0) const;

  const TokenCodec& tokenizer() const { return tok_; }
  const NiahTemplate& niah() const { return niah_; }

  struct Data;

 private:
  int64_t haystack_units(const std::string& task, int64_t ctx, int max_new, uint64_t seed) const;
  RecallSample generate_niah(const SampleSpec& spec) const;
  RecallSample generate_ruler(const SampleSpec& spec) const;
  void finish(RecallSample& s, const std::vector<size_t>& needle_chars, size_t answer_needle) const;

  const TokenCodec& tok_;
  NiahTemplate niah_;
  std::unique_ptr<Data> data_;
  mutable std::mutex mu_;
  mutable std::map<std::string, int64_t> units_;  // (task, ctx, max_new, seed) -> haystack units
};

uint64_t fnv1a(const std::vector<int32_t>& ids);

}  // namespace v4b::evals::recall
