// Self-contained SVG line charts (no scripts, no external resources), log or linear axes.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace v4b::render {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y); non-positive values are skipped on log axes
};

struct ChartSpec {
  std::string title, x_label, y_label;
  bool log_x = true, log_y = true;
};

std::string line_chart_svg(const ChartSpec& spec, const std::vector<Series>& series);

// Text safe inside SVG/XML elements and attributes.
std::string xml_escape(const std::string& s);

// 1024 -> "1k", 1048576 -> "1M", 3.5e9 -> "3.5G" (binary multiples when exact, else decimal).
std::string short_number(double v);

}  // namespace v4b::render
