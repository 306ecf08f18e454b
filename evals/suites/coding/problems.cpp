#include "evals/suites/coding/problems.h"

#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "common/errors.h"
#include "engine/io/files.h"
#include "engine/io/tokenizer.h"

namespace v4b::evals::coding {

namespace {

using nlohmann::json;

std::string read_text(const std::string& name) {
  const std::filesystem::path path = datasets_dir() / "coding" / name;
  std::string data = read_file_bytes(path, "coding dataset file");
  return is_gzip(data) ? gunzip(data, fmt::format("coding dataset file '{}'", path.string())) : data;
}

// EvalPlus writes a few inputs as bare NaN / Infinity (Python's json does); nlohmann/json rejects
// them. Only the metadata is read here (the driver reads inputs with Python), so they become null.
json parse_python_json(const std::string& line) {
  std::string fixed;
  fixed.reserve(line.size());
  bool in_string = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (in_string) {
      fixed += ch;
      if (ch == '\\' && i + 1 < line.size()) fixed += line[++i];
      else if (ch == '"') in_string = false;
      continue;
    }
    if (ch == '"') in_string = true;
    bool replaced = false;
    for (const char* word : {"-Infinity", "Infinity", "NaN"}) {
      const size_t len = std::char_traits<char>::length(word);
      if (line.compare(i, len, word) == 0) {
        fixed += "null";
        i += len - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced) fixed += ch;
  }
  return json::parse(fixed);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

std::string mbpp_prompt(const std::string& text, const json& tests) {
  std::string p = "You are an expert Python programmer, and here is your task: " + text + " Your code should pass these tests:\n\n";
  for (const auto& t : tests) p += t.get<std::string>() + "\n";
  return p;
}

// The function an MBPP program must define: the name called by its first assert.
std::string called_function(const std::string& assert_line) {
  size_t i = assert_line.find("assert");
  i = i == std::string::npos ? 0 : i + 6;
  while (i < assert_line.size() && !(std::isalpha(static_cast<unsigned char>(assert_line[i])) || assert_line[i] == '_')) ++i;
  size_t j = i;
  while (j < assert_line.size() && (std::isalnum(static_cast<unsigned char>(assert_line[j])) || assert_line[j] == '_')) ++j;
  std::string name = assert_line.substr(i, j - i);
  if (name == "set" || name == "math" || name == "sorted" || name == "abs" || name == "round" || name == "len") {
    const size_t paren = assert_line.find('(', j);
    return called_function("assert " + assert_line.substr(paren == std::string::npos ? j : paren + 1));
  }
  return name;
}

// HumanEval and the EvalPlus sets share one JSONL layout: task_id, prompt, entry_point and a
// canonical solution that completes the prompt.
std::vector<Problem> prompt_completion_set(const char* file, const char* dataset, Grading grading) {
  std::vector<Problem> out;
  for (const auto& line : lines_of(read_text(file))) {
    const json j = parse_python_json(line);
    Problem p;
    p.task_id = j.at("task_id");
    p.prompt = j.at("prompt");
    p.entry_point = j.at("entry_point");
    p.canonical = p.prompt + j.at("canonical_solution").get<std::string>();
    p.code_prompt = true;
    p.dataset = dataset;
    p.grading = grading;
    p.raw = line;
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Problem> humaneval(bool plus) {
  return plus ? prompt_completion_set("HumanEvalPlus-v0.1.10.jsonl.gz", "humaneval", Grading::kEvalPlus)
              : prompt_completion_set("HumanEval.jsonl.gz", "humaneval", Grading::kHumanEval);
}

std::vector<Problem> mbpp_plus() { return prompt_completion_set("MbppPlus-v0.2.0.jsonl.gz", "mbpp", Grading::kEvalPlus); }

std::vector<Problem> mbpp(bool sanitized) {
  std::vector<Problem> out;
  auto add = [&](const json& j, const std::string& text, const std::string& prelude, const std::string& setup) {
    const int id = j.at("task_id");
    if (id < 11 || id > 510) return;  // the test split
    Problem p;
    p.task_id = fmt::format("Mbpp/{}", id);
    p.prompt = mbpp_prompt(text, j.at("test_list"));
    p.entry_point = called_function(j.at("test_list").at(0).get<std::string>());
    p.canonical = j.at("code");
    p.dataset = "mbpp";
    p.grading = Grading::kAsserts;
    p.raw = j.dump();
    p.job = {{"prelude", prelude}, {"setup", setup}, {"tests", j.at("test_list")}};
    out.push_back(std::move(p));
  };
  if (sanitized) {
    for (const auto& j : json::parse(read_text("sanitized-mbpp.json"))) {
      std::string imports;
      for (const auto& imp : j.at("test_imports")) imports += imp.get<std::string>() + "\n";
      add(j, j.at("prompt"), imports, "");
    }
  } else {
    for (const auto& line : lines_of(read_text("mbpp.jsonl"))) {
      const json j = json::parse(line);
      add(j, j.at("text"), "", j.at("test_setup_code"));
    }
  }
  return out;
}

std::vector<Problem> lcb_sample() {
  std::vector<Problem> out;
  for (const auto& line : lines_of(read_text("lcb_sample.jsonl"))) {
    const json j = json::parse(line);
    json tests = json::parse(j.at("public_test_cases").get<std::string>());
    for (const auto& t : json::parse(j.at("private_test_cases").get<std::string>())) tests.push_back(t);
    const json meta = json::parse(j.value("metadata", std::string("{}")));
    Problem p;
    p.task_id = j.at("question_id");
    p.entry_point = meta.value("func_name", "");
    const std::string type = tests.empty() ? "stdin" : tests.at(0).value("testtype", "stdin");
    p.prompt = j.at("question_content").get<std::string>() +
               (type == "functional" ? "\n\nComplete this code:\n```python\n" + j.value("starter_code", "") + "\n```\n"
                                     : "\n\nRead the input from stdin and write the answer to stdout.\n");
    p.canonical = j.at("solution");
    p.dataset = "lcb";
    p.grading = Grading::kLcb;
    p.raw = line;
    p.job = {{"testtype", type}, {"func_name", p.entry_point}, {"tests", tests}};
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"humaneval", "humaneval+", "mbpp", "mbpp-sanitized", "mbpp+", "lcb-sample"};
  return names;
}

std::vector<Problem> load_problems(const std::string& dataset) {
  try {
    if (dataset == "humaneval") return humaneval(false);
    if (dataset == "humaneval+") return humaneval(true);
    if (dataset == "mbpp") return mbpp(false);
    if (dataset == "mbpp-sanitized") return mbpp(true);
    if (dataset == "mbpp+") return mbpp_plus();
    if (dataset == "lcb-sample") return lcb_sample();
  } catch (const json::exception& e) {
    throw std::runtime_error(fmt::format("dataset '{}' is malformed: {}", dataset, e.what()));
  }
  std::string known;
  for (const auto& n : dataset_names()) known += (known.empty() ? "" : ", ") + n;
  throw UsageError(fmt::format("unknown --dataset '{}': expected one of {}", dataset, known));
}

std::string program_for(const Problem& p, const std::string& text) {
  if (!p.code_prompt) return text;
  if (!p.entry_point.empty() && text.find("def " + p.entry_point) != std::string::npos) return text;
  return p.prompt + text;
}

}  // namespace v4b::evals::coding
