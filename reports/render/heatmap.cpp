#include "reports/render/heatmap.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "reports/render/svg.h"

namespace v4b::render {

namespace {

struct Rgb {
  double r, g, b;
};
Rgb lerp(Rgb a, Rgb b, double t) { return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t}; }

// gkamradt's red -> yellow -> green for levels; red -> white -> green for differences.
std::string colour(const HeatmapSpec& spec, double v) {
  const double t = std::clamp((v - spec.min) / std::max(1e-12, spec.max - spec.min), 0.0, 1.0);
  const Rgb red{215, 48, 39}, yellow{254, 224, 139}, white{247, 247, 247}, green{26, 152, 80};
  const Rgb mid = spec.diverging ? white : yellow;
  const Rgb c = t < 0.5 ? lerp(red, mid, t * 2) : lerp(mid, green, (t - 0.5) * 2);
  return fmt::format("#{:02x}{:02x}{:02x}", static_cast<int>(std::lround(c.r)), static_cast<int>(std::lround(c.g)),
                     static_cast<int>(std::lround(c.b)));
}

}  // namespace

std::string heatmap_svg(const HeatmapSpec& spec, const std::vector<std::string>& cols, const std::vector<std::string>& rows,
                        const std::vector<std::vector<double>>& values) {
  constexpr double L = 90, T = 50, R = 30, B = 96, kCellW = 64, kCellH = 26;
  // Wide enough for the grid and for the title (about 8 px a character at 14 px).
  const double W = std::max(L + R + kCellW * static_cast<double>(std::max<size_t>(cols.size(), 1)),
                            40 + 8.0 * static_cast<double>(spec.title.size()));
  const double H = T + B + kCellH * static_cast<double>(std::max<size_t>(rows.size(), 1));
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      W, H);
  s += fmt::format("<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n", W / 2, xml_escape(spec.title));
  for (size_t r = 0; r < rows.size(); ++r) {
    const double y = T + kCellH * static_cast<double>(r);
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", L - 6, y + kCellH / 2 + 4, xml_escape(rows[r]));
    for (size_t c = 0; c < cols.size(); ++c) {
      const double x = L + kCellW * static_cast<double>(c);
      const double v = r < values.size() && c < values[r].size() ? values[r][c] : std::nan("");
      const bool have = std::isfinite(v);
      s += fmt::format("<rect class=\"cell\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"white\"/>\n", x, y, kCellW,
                       kCellH, have ? colour(spec, v) : "#d9d9d9");
      if (have)
        s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x + kCellW / 2, y + kCellH / 2 + 4,
                         xml_escape(fmt::format(fmt::runtime(spec.value_format), v)));
    }
  }
  const double bottom = T + kCellH * static_cast<double>(rows.size());
  for (size_t c = 0; c < cols.size(); ++c)
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", L + kCellW * (static_cast<double>(c) + 0.5), bottom + 16,
                     xml_escape(cols[c]));
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", L + (W - L - R) / 2, bottom + 40, xml_escape(spec.x_label));
  s += fmt::format("<text x=\"16\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0})\">{1}</text>\n", T + (bottom - T) / 2,
                   xml_escape(spec.y_label));
  // The colour key: the scale from min to max in 11 steps, labelled at both ends and the middle.
  constexpr int kSteps = 11;
  constexpr double kKeyW = 18, kKeyH = 10;
  const double kx = L, ky = bottom + 56;
  for (int i = 0; i < kSteps; ++i) {
    const double v = spec.min + (spec.max - spec.min) * i / (kSteps - 1);
    s += fmt::format("<rect class=\"key\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\n", kx + kKeyW * i, ky, kKeyW, kKeyH,
                     colour(spec, v));
  }
  for (int i : {0, kSteps / 2, kSteps - 1}) {
    const double v = spec.min + (spec.max - spec.min) * i / (kSteps - 1);
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">{}</text>\n", kx + kKeyW * (i + 0.5), ky + kKeyH + 12,
                     xml_escape(fmt::format(fmt::runtime(spec.value_format), v)));
  }
  s += "</svg>\n";
  return s;
}

}  // namespace v4b::render
