#include <gtest/gtest.h>

#include "reports/render/svg.h"
#include "reports/render/table.h"

using namespace v4b::render;

TEST(Svg, ShortNumbers) {
  EXPECT_EQ(short_number(4096), "4k");
  EXPECT_EQ(short_number(1048576), "1M");
  EXPECT_EQ(short_number(1e9), "1G");
  EXPECT_EQ(short_number(1e10), "10G");
  EXPECT_EQ(short_number(1e7), "10M");
  EXPECT_EQ(short_number(0.5), "0.5");
}

TEST(Svg, OneLinePerSeriesAndEscapedNames) {
  const std::string svg = line_chart_svg({"t", "x", "y"}, {{"a<b", {{1024, 10}, {4096, 100}}}, {"c", {{1024, 5}, {0, 7}, {4096, 50}}}});
  size_t lines = 0;
  for (size_t p = 0; (p = svg.find("<polyline", p)) != std::string::npos; ++p) ++lines;
  EXPECT_EQ(lines, 2u);
  EXPECT_NE(svg.find("a&lt;b"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST(Table, TextMarkdownCsv) {
  Table t;
  t.columns = {{"name", Align::kLeft}, {"v"}};
  t.add_row({"a|b", "1"});
  t.add_row({"c,\"d\"", "22"});
  t.notes.push_back("* note");
  EXPECT_EQ(to_markdown(t), "| name | v |\n|:---|---:|\n| a\\|b | 1 |\n| c,\"d\" | 22 |\n\n* note\n");
  EXPECT_EQ(to_csv(t), "name,v\na|b,1\n\"c,\"\"d\"\"\",22\n");
  EXPECT_EQ(to_text(t), "name    v\n-----  --\na|b     1\nc,\"d\"  22\n* note\n");
}
