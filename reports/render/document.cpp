#include "reports/render/document.h"

#include <cctype>

#include <fmt/format.h>

namespace v4b::render {

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {
// Contents are listed once a report has this many sections.
constexpr size_t kContentsFrom = 3;

// GitHub's heading anchor: lower case, spaces to '-', other punctuation dropped.
std::string anchor(std::string_view title) {
  std::string a;
  for (unsigned char c : title) {
    if (std::isalnum(c)) a += static_cast<char>(std::tolower(c));
    else if (c == ' ' || c == '-') a += '-';
    // Other punctuation, an em dash included, is dropped.
  }
  return a;
}
}  // namespace

std::string to_markdown(const Document& d) {
  std::string md = "# " + d.title + "\n\n";
  if (d.sections.size() >= kContentsFrom) {
    md += "**Contents**\n\n";
    for (const Section& s : d.sections) md += fmt::format("- [{}](#{})\n", s.title, anchor(s.title));
    md += "\n";
  }
  for (const Section& s : d.sections) {
    md += "## " + s.title + "\n\n";
    for (const auto& [k, v] : s.facts) md += fmt::format("- **{}**: {}\n", k, v);
    if (!s.facts.empty()) md += "\n";
    for (const auto& p : s.paragraphs) md += p + "\n\n";
    for (const Table& t : s.tables) md += to_markdown(t) + "\n";
    for (const Figure& f : s.figures) md += fmt::format("![{}]({})\n\n", f.caption, f.file_name);
  }
  return md;
}

namespace {

constexpr const char* kStyle = R"(
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; border-bottom: 2px solid #444; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; font-size: .9em; }
dt { font-weight: 600; color: #555; }
dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
table { border-collapse: collapse; margin: 1em 0; font-size: .85em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; }
th { background: #f3f3f3; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
nav ol { columns: 2; font-size: .9em; }
.figs { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 1.5em 0; }
figcaption { font-size: .85em; color: #555; }
.note { font-size: .8em; color: #666; }
)";

std::string html_table(const Table& t) {
  std::string h = "<table>\n<tr>";
  for (const Column& c : t.columns) h += fmt::format("<th class=\"{}\">{}</th>", c.align == Align::kRight ? "r" : "l", html_escape(c.title));
  h += "</tr>\n";
  for (const auto& row : t.rows) {
    h += "<tr>";
    for (size_t i = 0; i < row.size(); ++i) {
      const bool right = i < t.columns.size() && t.columns[i].align == Align::kRight;
      h += fmt::format("<td class=\"{}\">{}</td>", right ? "r" : "l", html_escape(row[i]));
    }
    h += "</tr>\n";
  }
  h += "</table>\n";
  for (const auto& n : t.notes) h += "<p class=\"note\">" + html_escape(n) + "</p>\n";
  return h;
}

}  // namespace

std::string to_html(const Document& d) {
  std::string h = fmt::format("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
                              html_escape(d.title), kStyle, html_escape(d.title));
  if (d.sections.size() >= kContentsFrom) {
    h += "<nav>\n<h2>Contents</h2>\n<ol>\n";
    for (size_t i = 0; i < d.sections.size(); ++i)
      h += fmt::format("<li><a href=\"#s{}\">{}</a></li>\n", i + 1, html_escape(d.sections[i].title));
    h += "</ol>\n</nav>\n";
  }
  for (size_t i = 0; i < d.sections.size(); ++i) {
    const Section& s = d.sections[i];
    h += fmt::format("<section id=\"s{}\">\n<h2>", i + 1) + html_escape(s.title) + "</h2>\n";
    if (!s.facts.empty()) {
      h += "<dl>\n";
      for (const auto& [k, v] : s.facts) h += "<dt>" + html_escape(k) + "</dt><dd>" + html_escape(v) + "</dd>\n";
      h += "</dl>\n";
    }
    for (const auto& p : s.paragraphs) h += "<p>" + html_escape(p) + "</p>\n";
    for (const Table& t : s.tables) h += html_table(t);
    // SVG is our own renderer's output (reports/render), inlined as is.
    // Figures side by side where the page is wide enough (a heatmap per attention mode).
    if (!s.figures.empty()) h += "<div class=\"figs\">\n";
    for (const Figure& f : s.figures) h += "<figure>\n" + f.svg + "\n<figcaption>" + html_escape(f.caption) + "</figcaption>\n</figure>\n";
    if (!s.figures.empty()) h += "</div>\n";
    h += "</section>\n";
  }
  h += "</body>\n</html>\n";
  return h;
}

}  // namespace v4b::render
