#include "reports/render/svg.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace v4b::render {

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

}  // namespace

std::string xml_escape(const std::string& s) { return escape(s); }

std::string short_number(double v) {
  const double a = std::fabs(v);
  for (auto [scale, suffix] : std::initializer_list<std::pair<double, const char*>>{{1ull << 40, "T"}, {1 << 30, "G"}, {1 << 20, "M"}, {1 << 10, "k"}})
    if (a >= scale && a / scale < 1024 && std::fmod(a, scale) == 0) return fmt::format("{}{}", v / scale, suffix);
  for (auto [scale, suffix] : std::initializer_list<std::pair<double, const char*>>{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}})
    if (a >= scale) return fmt::format("{:.3g}{}", v / scale, suffix);
  return fmt::format("{:.3g}", v);
}

std::string line_chart_svg(const ChartSpec& spec, const std::vector<Series>& series) {
  constexpr double W = 720, H = 440, L = 80, R = 170, T = 40, B = 60;
  auto fx = [&](double v) { return spec.log_x ? std::log10(v) : v; };
  auto fy = [&](double v) { return spec.log_y ? std::log10(v) : v; };
  auto usable = [&](const std::pair<double, double>& p) {
    return std::isfinite(p.first) && std::isfinite(p.second) && (!spec.log_x || p.first > 0) && (!spec.log_y || p.second > 0);
  };
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : series)
    for (const auto& p : s.points)
      if (usable(p)) {
        x0 = std::min(x0, fx(p.first)), x1 = std::max(x1, fx(p.first));
        y0 = std::min(y0, fy(p.second)), y1 = std::max(y1, fy(p.second));
      }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // nothing to plot: empty axes
  if (spec.log_x) x0 = std::floor(x0), x1 = std::max(std::ceil(x1), x0 + 1);
  if (spec.log_y) y0 = std::floor(y0), y1 = std::max(std::ceil(y1), y0 + 1);
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  auto px = [&](double v) { return L + (fx(v) - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double v) { return H - B - (fy(v) - y0) / (y1 - y0) * (H - T - B); };

  std::string svg = fmt::format(
      R"svg(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" font-family="sans-serif" font-size="12">)svg"
      "\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      W, H, W, H);
  svg += fmt::format(R"svg(<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>)svg"
                     "\n",
                     (L + W - R) / 2, escape(spec.title));
  // Axes and ticks: decades on log axes, five steps on linear ones.
  svg += fmt::format(R"svg(<path d="M{} {} V{} H{}" stroke="black" fill="none"/>)svg"
                     "\n",
                     L, T, H - B, W - R);
  auto ticks = [](double a, double b, bool log) {
    std::vector<double> v;
    if (log)
      for (double e = a; e <= b + 1e-9; e += 1) v.push_back(std::pow(10.0, e));
    else
      for (int i = 0; i <= 5; ++i) v.push_back(a + (b - a) * i / 5);
    return v;
  };
  for (double t : ticks(x0, x1, spec.log_x)) {
    const double x = px(t);
    svg += fmt::format(R"svg(<line x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}" stroke="#ddd"/><text x="{:.1f}" y="{}" text-anchor="middle">{}</text>)svg"
                       "\n",
                       x, T, x, H - B, x, H - B + 18, short_number(t));
  }
  for (double t : ticks(y0, y1, spec.log_y)) {
    const double y = py(t);
    svg += fmt::format(R"svg(<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="#ddd"/><text x="{}" y="{:.1f}" text-anchor="end">{}</text>)svg"
                       "\n",
                       L, y, W - R, y, L - 6, y + 4, short_number(t));
  }
  svg += fmt::format(R"svg(<text x="{}" y="{}" text-anchor="middle">{}</text>)svg"
                     "\n",
                     (L + W - R) / 2, H - 18, escape(spec.x_label));
  svg += fmt::format(R"svg(<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>)svg"
                     "\n",
                     (T + H - B) / 2, (T + H - B) / 2, escape(spec.y_label));
  // One polyline with markers per series, and the legend.
  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kColors[i % std::size(kColors)];
    std::vector<std::pair<double, double>> pts;
    for (const auto& p : series[i].points)
      if (usable(p)) pts.push_back(p);
    std::sort(pts.begin(), pts.end());
    std::string d;
    for (const auto& [x, y] : pts) d += fmt::format("{}{:.1f},{:.1f}", d.empty() ? "" : " ", px(x), py(y));
    if (!d.empty())
      svg += fmt::format(R"svg(<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>)svg"
                         "\n",
                         d, color);
    for (const auto& [x, y] : pts)
      svg += fmt::format(R"svg(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"><title>{}: {} at {}</title></circle>)svg"
                         "\n",
                         px(x), py(y), color, escape(series[i].name), short_number(y), short_number(x));
    const double ly = T + 10 + 18 * static_cast<double>(i);
    svg += fmt::format(R"svg(<rect x="{}" y="{:.1f}" width="12" height="3" fill="{}"/><text x="{}" y="{:.1f}">{}</text>)svg"
                       "\n",
                       W - R + 12, ly, color, W - R + 30, ly + 5, escape(series[i].name));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace v4b::render
