// The HTML report: one self-contained file that headless Chromium (Debian's, installed by
// scripts/setup.sh) opens without console messages, and whose screenshot shows drawn plots.
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/test_util.h"

using v4b::test::slurp;
using v4b::test::run_cli;
using v4b::test::TempDir;

namespace {

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // 3 bytes a pixel
};

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are).
Image read_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
  Image img;
  if (bytes.size() < 8 || std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) != 0) return img;
  std::string idat;
  int channels = 0;
  for (size_t at = 8; at + 8 <= bytes.size();) {
    const uint32_t len = be32(d + at);
    const std::string type(bytes, at + 4, 4);
    const uint8_t* body = d + at + 8;
    if (type == "IHDR") {
      img.width = be32(body);
      img.height = be32(body + 4);
      if (body[8] != 8 || body[12] != 0) return {};
      channels = body[9] == 2 ? 3 : body[9] == 6 ? 4 : 0;
    } else if (type == "IDAT") {
      idat.append(reinterpret_cast<const char*>(body), len);
    }
    at += 12 + len;
  }
  if (channels == 0) return {};
  const size_t stride = static_cast<size_t>(img.width) * channels;
  std::vector<uint8_t> raw((stride + 1) * img.height);
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK) return {};
  std::vector<uint8_t> prev(stride, 0), cur(stride);
  img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
  for (int64_t y = 0; y < img.height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* line = raw.data() + y * (stride + 1) + 1;
    for (size_t x = 0; x < stride; ++x) {
      const int a = x >= size_t(channels) ? cur[x - channels] : 0, b = prev[x], c = x >= size_t(channels) ? prev[x - channels] : 0;
      int pred = 0;
      switch (filter) {
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: break;
      }
      cur[x] = static_cast<uint8_t>(line[x] + pred);
    }
    for (int64_t x = 0; x < img.width; ++x)
      for (int k = 0; k < 3; ++k) img.rgb[(y * img.width + x) * 3 + k] = cur[x * channels + k];
    prev.swap(cur);
  }
  return img;
}

}  // namespace

TEST(HtmlReport, OpensInHeadlessChromiumAndShowsPlots) {
  TempDir dir;
  const std::string db = (dir.path / "r.db").string(), html = (dir.path / "report.html").string();
  const std::string env = "V4BENCH_CACHE_DIR=" + (dir.path / "cache").string();
  ASSERT_EQ(run_cli("run analyze --model v4-pro,v4-flash --vs v3.2 --ctx 4k,128k,1m --db " + db, env).status, 0);
  ASSERT_EQ(run_cli("run kv --model v4-tiny,gqa-tiny --ctx 512,2k --kv-format bf16 --db " + db, env).status, 0);
  auto r = run_cli("report 1 2 --format html --out " + html + " --db " + db, env);
  ASSERT_EQ(r.status, 0) << r.err;

  // Self-contained: no scripts, stylesheets or images fetched from anywhere.
  const std::string page = slurp(html);
  for (const char* banned : {"<script", "<link", "src=", "@import", "url("}) EXPECT_EQ(page.find(banned), std::string::npos) << banned;
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_NE(page.find("Headline at 1M tokens"), std::string::npos);
  EXPECT_NE(page.find("ceilings"), std::string::npos);  // host context with every run

  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "scripts/setup.sh installs Debian's chromium for this test";
  const std::string png = (dir.path / "shot.png").string(), log = (dir.path / "chromium.log").string();
  const std::string cmd = "HOME=" + dir.path.string() + " /usr/bin/chromium --headless --no-sandbox --disable-gpu --hide-scrollbars " +
                          "--window-size=1200,3200 --enable-logging=stderr --v=0 --screenshot=" + png + " file://" + html + " >" + log +
                          " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(log);
  EXPECT_EQ(slurp(log).find("CONSOLE"), std::string::npos) << slurp(log);  // the page logged nothing

  const Image img = read_png(png);
  ASSERT_EQ(img.width, 1200);
  ASSERT_EQ(img.height, 3200);
  // Plots draw their series in colour; tables and text are grey. Count clearly coloured pixels.
  int64_t coloured = 0, non_white = 0;
  for (size_t i = 0; i < img.rgb.size(); i += 3) {
    const int r8 = img.rgb[i], g = img.rgb[i + 1], b = img.rgb[i + 2];
    coloured += std::max({r8, g, b}) - std::min({r8, g, b}) > 80;
    non_white += r8 + g + b < 600;
  }
  EXPECT_GT(coloured, 2000) << "no plotted series visible";
  EXPECT_GT(non_white, 20000);

  // The first screen (1200 x 900) holds the contents, the headline and the start of the charts:
  // the summary comes before the runs' tables.
  const size_t contents = page.find("<h2>Contents</h2>"), head = page.find("Headline at 1M tokens</h2>"),
               first_run = page.find("<h2>Run 1 — ");
  ASSERT_NE(contents, std::string::npos);
  ASSERT_NE(first_run, std::string::npos);
  EXPECT_LT(contents, head);
  EXPECT_LT(head, first_run);
  EXPECT_LT(page.find("<svg"), first_run) << "charts before the run tables";
  const std::string first = (dir.path / "first.png").string();
  const std::string cmd2 = "HOME=" + dir.path.string() + " /usr/bin/chromium --headless --no-sandbox --disable-gpu --hide-scrollbars " +
                           "--window-size=1200,900 --screenshot=" + first + " file://" + html + " >" + log + " 2>&1";
  ASSERT_EQ(std::system(cmd2.c_str()), 0) << slurp(log);
  const Image top = read_png(first);
  ASSERT_EQ(top.height, 900);
  int64_t top_coloured = 0;
  for (size_t i = 0; i < top.rgb.size(); i += 3)
    top_coloured += std::max({top.rgb[i], top.rgb[i + 1], top.rgb[i + 2]}) - std::min({top.rgb[i], top.rgb[i + 1], top.rgb[i + 2]}) > 80;
  EXPECT_GT(top_coloured, 500) << "the first screen shows no contents links or chart";
}
