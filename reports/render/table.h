// A plain table of already-formatted cells, rendered as aligned text, Markdown or CSV.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace v4b::render {

enum class Align { kLeft, kRight };

struct Column {
  std::string title;
  Align align = Align::kRight;
};

struct Table {
  std::vector<Column> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;  // printed under the text and Markdown forms, not in CSV

  void add_row(std::vector<std::string> cells) { rows.push_back(std::move(cells)); }
};

std::string to_text(const Table& t);      // space-aligned, for terminals
std::string to_markdown(const Table& t);  // GitHub-flavoured, fits a CI comment
std::string to_csv(const Table& t);       // RFC 4180 quoting

// Quotes one CSV field when it needs it.
std::string csv_field(std::string_view s);

}  // namespace v4b::render
