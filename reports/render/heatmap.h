// Self-contained SVG heatmaps (no scripts, no external resources): a grid of coloured cells with
// their values written in, e.g. recall accuracy by needle depth (rows) and context length (columns).
#pragma once

#include <string>
#include <vector>

namespace v4b::render {

struct HeatmapSpec {
  std::string title, x_label, y_label;
  double min = 0, max = 100;  // colour scale; values outside are clamped
  bool diverging = false;     // red (min) - white (midpoint) - green (max), for differences
  std::string value_format = "{:.0f}";
};

// values[row][col], rows top to bottom; NaN marks a missing cell (drawn grey, no value).
std::string heatmap_svg(const HeatmapSpec& spec, const std::vector<std::string>& col_labels, const std::vector<std::string>& row_labels,
                        const std::vector<std::vector<double>>& values);

}  // namespace v4b::render
