// scripts/check-layering.py: passes on this tree, and fails, naming the file and the edge, once a
// forbidden include is added (reports including the engine or a suite; one suite including another;
// a schema header including anything).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/test_util.h"

namespace v4b::test {
namespace {

namespace fs = std::filesystem;

struct CheckRun {
  int rc = -1;
  std::string out;
};

CheckRun check(const fs::path& root) {
  const std::string cmd = "python3 " + (fs::path(V4B_SOURCE_DIR) / "scripts/check-layering.py").string() + " " + root.string() + " 2>&1";
  CheckRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

void write(const fs::path& f, const std::string& text) {
  fs::create_directories(f.parent_path());
  std::ofstream(f) << text;
}

TEST(Layering, SourceTreeFollowsTheAllowedEdges) {
  const CheckRun r = check(V4B_SOURCE_DIR);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("every include follows"), std::string::npos) << r.out;
}

TEST(Layering, ForbiddenIncludesFail) {
  TempDir dir;
  // Allowed: reports -> common, a suite -> the suite framework, metrics, backends and its own files.
  write(dir.path / "reports/store/a.cpp", "#include \"common/errors.h\"\n#include \"reports/store/a.h\"\n");
  write(dir.path / "evals/suites/recall/r.cpp",
        "#include \"evals/suites/suite.h\"\n#include \"evals/metrics/divergence.h\"\n#include \"evals/backends/backend.h\"\n"
        "#include \"evals/suites/recall/r.h\"\n#include \"reports/schema/recall.h\"\n");
  write(dir.path / "reports/render/views/v.cpp", "#include \"reports/schema/recall.h\"\n#include \"reports/store/store.h\"\n");
  CheckRun ok = check(dir.path);
  ASSERT_EQ(ok.rc, 0) << ok.out;

  write(dir.path / "reports/render/b.cpp", "#include <vector>\n#include \"engine/runtime/engine.h\"\n");
  write(dir.path / "evals/suites/flops/f.cpp", "#include \"evals/suites/kv/kv_suite.h\"\n");
  write(dir.path / "evals/backends/x.cpp", "#include \"evals/suites/suite.h\"\n");
  write(dir.path / "reports/render/views/w.cpp", "#include \"evals/suites/recall/recall_suite.h\"\n");  // a view reads the store only
  write(dir.path / "reports/schema/s.h", "#include \"reports/store/store.h\"\n");                   // names only
  const CheckRun bad = check(dir.path);
  EXPECT_EQ(bad.rc, 1) << bad.out;
  EXPECT_NE(bad.out.find("reports/render/b.cpp:2: reports may not include engine"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("suite flops includes suite kv"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("evals/backends/x.cpp:1: backends may not include suites"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("reports/render/views/w.cpp:1: reports may not include suites"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("reports/schema/s.h:1: schema may not include reports"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("5 include(s)"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace v4b::test
