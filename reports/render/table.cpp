#include "reports/render/table.h"

#include <algorithm>

namespace v4b::render {

namespace {

std::vector<size_t> widths(const Table& t) {
  std::vector<size_t> w;
  for (const auto& c : t.columns) w.push_back(c.title.size());
  for (const auto& r : t.rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  return w;
}

std::string pad(const std::string& s, size_t width, Align a) {
  const std::string fill(width > s.size() ? width - s.size() : 0, ' ');
  return a == Align::kRight ? fill + s : s + fill;
}

const std::string& cell(const std::vector<std::string>& row, size_t i) {
  static const std::string empty;
  return i < row.size() ? row[i] : empty;
}

}  // namespace

std::string to_text(const Table& t) {
  const auto w = widths(t);
  std::string out;
  auto line = [&](auto get) {
    std::string l;
    for (size_t i = 0; i < t.columns.size(); ++i) {
      if (i) l += "  ";
      l += pad(get(i), w[i], t.columns[i].align);
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line([&](size_t i) { return t.columns[i].title; });
  line([&](size_t i) { return std::string(w[i], '-'); });
  for (const auto& r : t.rows) line([&](size_t i) { return cell(r, i); });
  for (const auto& n : t.notes) out += n + "\n";
  return out;
}

std::string to_markdown(const Table& t) {
  std::string out = "|";
  for (const auto& c : t.columns) out.append(" ").append(c.title).append(" |");
  out += "\n|";
  for (const auto& c : t.columns) out += c.align == Align::kRight ? "---:|" : ":---|";
  out += "\n";
  for (const auto& r : t.rows) {
    out += "|";
    for (size_t i = 0; i < t.columns.size(); ++i) {
      std::string s = cell(r, i);
      for (size_t p = 0; (p = s.find('|', p)) != std::string::npos; p += 2) s.replace(p, 1, "\\|");
      out.append(" ").append(s).append(" |");
    }
    out += "\n";
  }
  for (const auto& n : t.notes) out += "\n" + n + "\n";  // a paragraph each
  return out;
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string to_csv(const Table& t) {
  std::string out;
  auto row = [&](auto get) {
    for (size_t i = 0; i < t.columns.size(); ++i) {
      if (i) out += ',';
      out += csv_field(get(i));
    }
    out += '\n';
  };
  row([&](size_t i) { return t.columns[i].title; });
  for (const auto& r : t.rows) row([&](size_t i) { return cell(r, i); });
  return out;
}

}  // namespace v4b::render
