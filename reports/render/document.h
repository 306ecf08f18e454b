// A report as data — titled sections of facts, text, tables and SVG figures — rendered to Markdown
// (fits a CI comment; figures become links to files written beside it) or to one self-contained
// HTML file (inline CSS and SVG, no scripts, nothing fetched). The report command builds one
// Document and picks the renderer, so both forms always carry the same content.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "reports/render/table.h"

namespace v4b::render {

struct Figure {
  std::string caption;
  std::string file_name;  // e.g. "kv_vs_ctx.svg": where Markdown links it and --svg-dir writes it
  std::string svg;
};

struct Section {
  std::string title;
  std::vector<std::pair<std::string, std::string>> facts;  // "model": "v4-small", shown as a definition list
  std::vector<std::string> paragraphs;
  std::vector<Table> tables;
  std::vector<Figure> figures;
};

struct Document {
  std::string title;
  std::vector<Section> sections;
};

std::string to_markdown(const Document& d);
std::string to_html(const Document& d);
// Escapes &, <, >, " for HTML text and attributes.
std::string html_escape(std::string_view s);

}  // namespace v4b::render
